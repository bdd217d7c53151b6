// Chat over livekit text streams on topic "lk.chat" (what LiveKit's own components use).

import { Room } from 'livekit-client';

export const CHAT_TOPIC = 'lk.chat';

export class Chat {
  constructor(
    private readonly list: HTMLOListElement,
    private readonly nameOf: (identity: string) => string,
  ) {}

  attach(room: Room): void {
    room.registerTextStreamHandler(CHAT_TOPIC, (reader, info) => {
      reader
        .readAll()
        .then((text) => this.add(info.identity, this.nameOf(info.identity), text, false))
        .catch((err: unknown) => console.warn('chat: incoming message failed', err));
    });
  }

  async send(room: Room, text: string): Promise<void> {
    await room.localParticipant.sendText(text, { topic: CHAT_TOPIC });
    this.add(room.localParticipant.identity, 'You', text, true);
  }

  clear(): void {
    this.list.replaceChildren();
  }

  private add(identity: string, name: string, text: string, mine: boolean): void {
    const item = document.createElement('li');
    item.dataset.from = identity;
    if (mine) item.className = 'mine';
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = name;
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    item.append(from, body);
    this.list.append(item);
    this.list.scrollTop = this.list.scrollHeight;
  }
}
