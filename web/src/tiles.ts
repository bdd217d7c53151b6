// Video tiles: one camera tile per participant (a placeholder while there is no video), plus one tile
// per screen share. `sync` reconciles the tiles with the room's current state after any event.

import { LocalVideoTrack, Participant, RemoteVideoTrack, Room, Track } from 'livekit-client';

type VideoTrack = LocalVideoTrack | RemoteVideoTrack;

interface Tile {
  element: HTMLElement;
  video: HTMLVideoElement;
  track?: VideoTrack;
}

const SOURCES = [Track.Source.Camera, Track.Source.ScreenShare] as const;

export class Tiles {
  private readonly tiles = new Map<string, Tile>();

  constructor(private readonly container: HTMLElement) {}

  sync(room: Room): void {
    const seen = new Set<string>();
    const people: Participant[] = [room.localParticipant, ...room.remoteParticipants.values()];
    for (const participant of people) {
      for (const source of SOURCES) {
        const publication = participant.getTrackPublication(source);
        const track = publication && !publication.isMuted ? publication.videoTrack : undefined;
        if (source === Track.Source.ScreenShare && !track) continue;
        const key = `${participant.identity}/${source}`;
        seen.add(key);
        const tile = this.ensure(key, participant, source, participant === room.localParticipant);
        this.show(tile, track);
        tile.element.classList.toggle('speaking', source === Track.Source.Camera && participant.isSpeaking);
      }
    }
    for (const [key, tile] of this.tiles) {
      if (!seen.has(key)) {
        this.show(tile, undefined);
        tile.element.remove();
        this.tiles.delete(key);
      }
    }
  }

  clear(): void {
    for (const tile of this.tiles.values()) {
      this.show(tile, undefined);
      tile.element.remove();
    }
    this.tiles.clear();
  }

  private ensure(key: string, participant: Participant, source: Track.Source, local: boolean): Tile {
    const label = displayName(participant) + (local ? ' (you)' : '') + (source === Track.Source.ScreenShare ? ' — screen' : '');
    let tile = this.tiles.get(key);
    if (!tile) {
      const element = document.createElement('div');
      element.className = 'tile';
      element.dataset.identity = participant.identity;
      element.dataset.source = source;
      element.dataset.local = String(local);
      const video = document.createElement('video');
      video.autoplay = true;
      video.playsInline = true;
      video.muted = true;
      const placeholder = document.createElement('div');
      placeholder.className = 'placeholder';
      const caption = document.createElement('div');
      caption.className = 'label';
      element.append(video, placeholder, caption);
      this.container.append(element);
      tile = { element, video };
      this.tiles.set(key, tile);
    }
    (tile.element.querySelector('.label') as HTMLElement).textContent = label;
    (tile.element.querySelector('.placeholder') as HTMLElement).textContent = initials(displayName(participant));
    return tile;
  }

  private show(tile: Tile, track: VideoTrack | undefined): void {
    if (tile.track === track) return;
    tile.track?.detach(tile.video);
    tile.track = track;
    if (track) track.attach(tile.video);
    tile.element.classList.toggle('has-video', track !== undefined);
  }
}

export function displayName(participant: Participant): string {
  return participant.name || participant.identity;
}

function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return parts.slice(0, 2).map((p) => p[0]!.toUpperCase()).join('') || '?';
}
