// The meet page: join a room with a development token, publish camera + microphone, show everyone's
// tiles, play their audio, chat. The connected Room is exposed as `window.parleyRoom` for tests and
// debugging in the browser console.

import {
  ConnectionState,
  DisconnectReason,
  RemoteTrack,
  Room,
  RoomEvent,
  Track,
  VideoPresets,
} from 'livekit-client';
import { Chat } from './chat';
import { renderParticipants } from './participants';
import { Tiles, displayName } from './tiles';
import { fetchDevToken, serverUrl } from './token';

declare global {
  interface Window {
    parleyRoom?: Room;
  }
}

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`meet page: #${id} is missing`);
  return element as T;
}

const ui = {
  lobby: byId<HTMLElement>('lobby'),
  call: byId<HTMLElement>('call'),
  status: byId<HTMLElement>('status'),
  joinForm: byId<HTMLFormElement>('join-form'),
  roomInput: byId<HTMLInputElement>('room-input'),
  nameInput: byId<HTMLInputElement>('name-input'),
  joinButton: byId<HTMLButtonElement>('join-button'),
  joinError: byId<HTMLElement>('join-error'),
  callError: byId<HTMLElement>('call-error'),
  tiles: byId<HTMLElement>('tiles'),
  mic: byId<HTMLButtonElement>('mic-button'),
  camera: byId<HTMLButtonElement>('camera-button'),
  screen: byId<HTMLButtonElement>('screen-button'),
  audio: byId<HTMLButtonElement>('audio-button'),
  leave: byId<HTMLButtonElement>('leave-button'),
  participants: byId<HTMLUListElement>('participants'),
  peopleCount: byId<HTMLElement>('people-count'),
  messages: byId<HTMLOListElement>('messages'),
  chatForm: byId<HTMLFormElement>('chat-form'),
  chatInput: byId<HTMLInputElement>('chat-input'),
  audioSink: byId<HTMLElement>('audio-sink'),
};

const tiles = new Tiles(ui.tiles);
let room: Room | undefined;
const chat = new Chat(ui.messages, (identity) => {
  const participant = room?.getParticipantByIdentity(identity);
  return participant ? displayName(participant) : identity;
});

function setStatus(state: string, text: string): void {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function showError(element: HTMLElement, message: string | undefined): void {
  element.textContent = message ?? '';
  element.hidden = !message;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function refresh(): void {
  if (!room) return;
  tiles.sync(room);
  renderParticipants(room, ui.participants, ui.peopleCount);
  const local = room.localParticipant;
  toggleButton(ui.mic, local.isMicrophoneEnabled, 'Mute mic', 'Unmute mic');
  toggleButton(ui.camera, local.isCameraEnabled, 'Stop camera', 'Start camera');
  toggleButton(ui.screen, local.isScreenShareEnabled, 'Stop sharing', 'Share screen');
  ui.audio.hidden = room.canPlaybackAudio;
}

function toggleButton(button: HTMLButtonElement, on: boolean, onText: string, offText: string): void {
  button.dataset.on = String(on);
  button.textContent = on ? onText : offText;
}

function wire(r: Room): void {
  const update = (): void => refresh();
  r.on(RoomEvent.ParticipantConnected, update)
    .on(RoomEvent.ParticipantDisconnected, update)
    .on(RoomEvent.ParticipantNameChanged, update)
    .on(RoomEvent.TrackPublished, update)
    .on(RoomEvent.TrackUnpublished, update)
    .on(RoomEvent.TrackMuted, update)
    .on(RoomEvent.TrackUnmuted, update)
    .on(RoomEvent.LocalTrackPublished, update)
    .on(RoomEvent.LocalTrackUnpublished, update)
    .on(RoomEvent.ActiveSpeakersChanged, update)
    .on(RoomEvent.AudioPlaybackStatusChanged, update)
    .on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
      if (track.kind === Track.Kind.Audio) ui.audioSink.append(track.attach());
      refresh();
    })
    .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => {
      if (track.kind === Track.Kind.Audio) track.detach().forEach((element) => element.remove());
      refresh();
    })
    .on(RoomEvent.ConnectionStateChanged, (state: ConnectionState) => {
      const text: Record<ConnectionState, string> = {
        [ConnectionState.Connecting]: 'connecting…',
        [ConnectionState.Connected]: `connected to ${r.name}`,
        [ConnectionState.Reconnecting]: 'reconnecting…',
        [ConnectionState.SignalReconnecting]: 'reconnecting…',
        [ConnectionState.Disconnected]: 'disconnected',
      };
      setStatus(state, text[state]);
    })
    .on(RoomEvent.Disconnected, (reason?: DisconnectReason) => leftRoom(reason));
  chat.attach(r);
}

function pageOption(name: string): boolean {
  const value = new URLSearchParams(window.location.search).get(name);
  return value === '1' || value === 'true';
}

async function join(roomName: string, name: string): Promise<void> {
  showError(ui.joinError, undefined);
  ui.joinButton.disabled = true;
  setStatus('connecting', 'getting a token…');
  try {
    const grant = await fetchDevToken(roomName, name);
    // ?watch=1: join with the microphone only, no camera (read before the URL is replaced below)
    const watchOnly = pageOption('watch');
    const r = new Room({
      // Capture at 720p so that simulcast carries three layers; everything else is livekit's default
      // unless the page's URL asks: ?adaptive=1 (adaptive stream: each tile gets the layer its size
      // needs, none while hidden) and ?dynacast=1 (layers nobody watches are paused at the source).
      videoCaptureDefaults: { resolution: VideoPresets.h720.resolution },
      adaptiveStream: pageOption('adaptive'),
      dynacast: pageOption('dynacast'),
    });
    room = r;
    window.parleyRoom = r;
    wire(r);
    await r.connect(serverUrl(), grant.token);
    localStorage.setItem('parley.name', name);
    history.replaceState(null, '', `?room=${encodeURIComponent(roomName)}`);
    ui.lobby.hidden = true;
    ui.call.hidden = false;
    refresh();
    try {
      if (watchOnly) await r.localParticipant.setMicrophoneEnabled(true);
      else await r.localParticipant.enableCameraAndMicrophone();
    } catch (err) {
      showError(ui.callError, `Camera or microphone unavailable: ${errorText(err)}`);
    }
    refresh();
  } catch (err) {
    room = undefined;
    setStatus('error', 'not connected');
    showError(ui.joinError, errorText(err));
  } finally {
    ui.joinButton.disabled = false;
  }
}

function leftRoom(reason?: DisconnectReason): void {
  tiles.clear();
  chat.clear();
  ui.audioSink.replaceChildren();
  ui.participants.replaceChildren();
  ui.call.hidden = true;
  ui.lobby.hidden = false;
  showError(ui.callError, undefined);
  if (reason !== undefined && reason !== DisconnectReason.CLIENT_INITIATED) {
    showError(ui.joinError, `Disconnected: ${DisconnectReason[reason] ?? reason}`);
  }
  room = undefined;
}

async function guarded(action: () => Promise<unknown>): Promise<void> {
  showError(ui.callError, undefined);
  try {
    await action();
  } catch (err) {
    showError(ui.callError, errorText(err));
  }
  refresh();
}

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const roomName = ui.roomInput.value.trim();
  const name = ui.nameInput.value.trim();
  if (roomName && name) void join(roomName, name);
});

ui.mic.addEventListener('click', () =>
  guarded(async () => room?.localParticipant.setMicrophoneEnabled(!room.localParticipant.isMicrophoneEnabled)),
);
ui.camera.addEventListener('click', () =>
  guarded(async () => room?.localParticipant.setCameraEnabled(!room.localParticipant.isCameraEnabled)),
);
ui.screen.addEventListener('click', () =>
  guarded(async () =>
    room?.localParticipant.setScreenShareEnabled(!room.localParticipant.isScreenShareEnabled, { audio: false }),
  ),
);
ui.audio.addEventListener('click', () => guarded(async () => room?.startAudio()));
ui.leave.addEventListener('click', () => guarded(async () => room?.disconnect()));

ui.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text || !room) return;
  ui.chatInput.value = '';
  void guarded(async () => room && chat.send(room, text));
});

const params = new URLSearchParams(window.location.search);
ui.roomInput.value = params.get('room') ?? '';
ui.nameInput.value = localStorage.getItem('parley.name') ?? '';
(ui.roomInput.value ? ui.nameInput : ui.roomInput).focus();
