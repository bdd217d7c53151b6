// Room API over JSON Twirp with the official livekit-server-sdk.
// Usage: LIVEKIT_URL=http://... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... node room_api.mjs <room>
// Prints one JSON line with what it saw; exits 1 on any failure.
import { RoomServiceClient, TwirpError } from 'livekit-server-sdk';

const url = process.env.LIVEKIT_URL;
const client = new RoomServiceClient(url, process.env.LIVEKIT_API_KEY, process.env.LIVEKIT_API_SECRET);
const name = process.argv[2] ?? 'node-room';

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

try {
  const created = await client.createRoom({ name, emptyTimeout: 60, maxParticipants: 5, metadata: 'n0' });
  check(created.sid.startsWith('RM_'), 'sid prefix');
  check(created.name === name && created.emptyTimeout === 60 && created.maxParticipants === 5, 'room fields');
  const again = await client.createRoom({ name });
  check(again.sid === created.sid, 'idempotent create');

  const all = await client.listRooms();
  check(all.some((r) => r.name === name), 'listed');
  const filtered = await client.listRooms([name]);
  check(filtered.length === 1 && filtered[0].sid === created.sid, 'filtered list');

  const updated = await client.updateRoomMetadata(name, 'n1');
  check(updated.metadata === 'n1' && updated.sid === created.sid, 'metadata updated');
  const afterUpdate = await client.listRooms([name]);
  check(afterUpdate[0].metadata === 'n1', 'metadata listed');

  await client.deleteRoom(name);
  const gone = await client.listRooms([name]);
  check(gone.length === 0, 'deleted');

  let notFound = null;
  try {
    await client.deleteRoom(name);
  } catch (err) {
    notFound = err instanceof TwirpError ? { status: err.status, code: err.code } : { other: String(err) };
  }
  console.log(JSON.stringify({ ok: true, sid: created.sid, notFound }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err?.stack ?? err) }));
  process.exit(1);
}
