"""``prepare_answer``: make aiortc's answer accept a client's simulcast offer.

aiortc's SDP layer drops ``a=rid``/``a=simulcast``. Without them in the answer libwebrtc sends one
encoding (browsers: the quarter layer) and the LiveKit Rust SDK fails to renegotiate ("negotiates
simulcast but does not negotiate the RID RTP header extension"). For every offered m-line with
``a=simulcast:send`` the answer gets ``a=rid:<rid> recv`` per layer, ``a=simulcast:recv <rids>`` and
the offer's rid/rrid ``a=extmap`` lines (same ids) when aiortc left them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.sfu.media.aiortc_internals import URI_RID, URI_RRID


@dataclass(slots=True)
class _Simulcast:
    rids: list[str] = field(default_factory=list)
    extmaps: list[str] = field(default_factory=list)


def _sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    head: list[str] = []
    media: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            head.append(line)
    return head, media


def _mid(section: list[str]) -> str | None:
    return next((line[6:].strip() for line in section if line.startswith("a=mid:")), None)


def _offered_simulcast(section: list[str]) -> _Simulcast | None:
    send_rids = {
        parts[0][6:]
        for line in section
        if line.startswith("a=rid:") and len(parts := line.split()) >= 2 and parts[1] == "send"
    }
    line = next((x for x in section if x.startswith("a=simulcast:")), None)
    if line is None or not send_rids:
        return None
    tokens = line[len("a=simulcast:") :].split()
    rids: list[str] = []
    for direction, spec in zip(tokens[::2], tokens[1::2], strict=False):
        if direction != "send":
            continue
        for group in spec.split(";"):
            for alternative in group.split(","):
                rid = alternative.lstrip("~")
                if rid in send_rids and rid not in rids:
                    rids.append(rid)
    if not rids:
        return None
    extmaps = [
        x
        for x in section
        if x.startswith("a=extmap:") and len(p := x.split()) >= 2 and p[1] in (URI_RID, URI_RRID)
    ]
    return _Simulcast(rids, extmaps)


def offered_simulcast_layers(offer_sdp: str) -> dict[str, list[str]]:
    """mid -> rids the offer sends as simulcast."""
    _, media = _sections(offer_sdp)
    out: dict[str, list[str]] = {}
    for section in media:
        mid = _mid(section)
        sim = _offered_simulcast(section)
        if mid is not None and sim is not None:
            out[mid] = sim.rids
    return out


def prepare_answer(offer_sdp: str, answer_sdp: str) -> str:
    """aiortc's answer with simulcast accepted for every m-line the offer sends simulcast on."""
    _, offer_media = _sections(offer_sdp)
    offered: dict[str, _Simulcast] = {}
    for section in offer_media:
        mid = _mid(section)
        sim = _offered_simulcast(section)
        if mid is not None and sim is not None and section[0].split()[1] != "0":
            offered[mid] = sim
    if not offered:
        return answer_sdp
    head, media = _sections(answer_sdp)
    out = list(head)
    for section in media:
        mid = _mid(section)
        sim = offered.get(mid) if mid is not None else None
        rejected = section[0].split()[1] == "0" or "a=inactive" in section or "a=sendonly" in section
        if sim is None or rejected:
            out += section
            continue
        kept = [x for x in section if not x.startswith(("a=rid:", "a=simulcast:"))]
        have = {x.split()[1] for x in kept if x.startswith("a=extmap:") and len(x.split()) >= 2}
        ids = {x.split()[0] for x in kept if x.startswith("a=extmap:")}
        extra = [x for x in sim.extmaps if x.split()[1] not in have and x.split()[0] not in ids]
        last_extmap = max((i for i, x in enumerate(kept) if x.startswith("a=extmap:")), default=len(kept) - 1)
        kept[last_extmap + 1 : last_extmap + 1] = extra
        kept += [f"a=rid:{rid} recv" for rid in sim.rids]
        kept.append("a=simulcast:recv " + ";".join(sim.rids))
        out += kept
    return "\r\n".join(out) + "\r\n"
