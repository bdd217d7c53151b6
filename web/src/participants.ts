// The participant list beside the tiles.

import { Participant, Room, Track } from 'livekit-client';
import { displayName } from './tiles';

export function renderParticipants(room: Room, list: HTMLUListElement, count: HTMLElement): void {
  const people: Participant[] = [room.localParticipant, ...room.remoteParticipants.values()];
  const items = people.map((participant) => {
    const item = document.createElement('li');
    item.dataset.identity = participant.identity;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = displayName(participant) + (participant === room.localParticipant ? ' (you)' : '');
    const flags = document.createElement('span');
    flags.className = 'flags';
    flags.textContent = flagsOf(participant).join(' · ');
    item.append(name, flags);
    return item;
  });
  list.replaceChildren(...items);
  count.textContent = `(${people.length})`;
}

function flagsOf(participant: Participant): string[] {
  const flags: string[] = [];
  const mic = participant.getTrackPublication(Track.Source.Microphone);
  const camera = participant.getTrackPublication(Track.Source.Camera);
  if (!mic || mic.isMuted) flags.push('mic off');
  if (!camera || camera.isMuted) flags.push('camera off');
  if (participant.getTrackPublication(Track.Source.ScreenShare)) flags.push('sharing');
  if (participant.isSpeaking) flags.push('speaking');
  return flags;
}
