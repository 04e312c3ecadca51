"""Read, Highlight and Summarize: a hierarchical Neural Semantic Encoder summariser.

Encoding (``encode``): each sentence of the source (from one ``<sent>`` to the next, cut
into pieces of ``sentence_len`` tokens) is read by a sentence-level NSE whose memory
starts as the sentence's token embeddings, all sentences in parallel; its final write
state is the sentence's vector. A document-level NSE then reads the sentence vectors, its
memory starting as those vectors. So the model keeps two memories: the token memory
(B, N, L, D), N sentences of L slots, and the document memory (B, N, D).

Decoding (``step``): per token, a read LSTM queries the document memory (which sentence:
``z_doc``) and, within each sentence, the token memory; the token attention is the
within-sentence attention times the sentence's, so it highlights tokens of the
highlighted sentences. The read vectors are composed, a write LSTM produces ``h`` and
both memories are written, ``M <- M * (1 - z) + z * h``. The output is a
pointer-generator: ``p_gen`` times the vocabulary distribution plus ``1 - p_gen`` times
the token attention scattered onto the source ids. The copy-slot ids of
``data/copy_words.py`` get no vocabulary mass, so a ``<copyk>`` (a source word outside the
vocabulary) is produced by copying only. ``step`` returns log-probabilities.

The decoder state: since the memories are rewritten at every step, they are state. The
current memories live in ``memory_rows`` (gathered by ``reorder``/``extend`` like any
memory), with the number of tokens they reflect (``written``); the token fed at each slot
is a ``slot_values`` entry and the LSTM states after each slot sit in the cache. A
``rollback`` only lowers ``lengths``, so the next ``step`` finds ``written > lengths`` and
rebuilds the memories by replaying the kept tokens from the encoder's memories: exact,
and only paid by decoders that roll back. Per-row vectors are kept in ``memory_rows`` as
(B, 1, ...) and read at position 0 (``extend`` may pad that axis).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.errors import ConfigError
from seqweave.models.base import Seq2SeqBase
from seqweave.models.embedding import token_embedding
from seqweave.models.nse import NSE, attend, keep, read_out, write
from seqweave.models.state import DecoderState, Memory


@dataclass
class NSEMemory(Memory):
    """``Memory`` plus the two NSE memories: ``tokens`` (B, N, L, D) with ``ids`` and
    ``token_mask`` (B, N, L), ``doc`` (B, N, D), ``sentences`` (B,) real sentence slots, and
    the decoder's starting LSTM states ``init`` (B, 4D)."""

    tokens: Tensor | None = None
    ids: Tensor | None = None
    token_mask: Tensor | None = None
    doc: Tensor | None = None
    sentences: Tensor | None = None
    init: Tensor | None = None

    def select(self, index: Tensor) -> NSEMemory:
        own = ("tokens", "ids", "token_mask", "doc", "sentences", "init")
        picked = {name: getattr(self, name).index_select(0, index) for name in own}
        return NSEMemory(**vars(super().select(index)), **picked)


@dataclass
class Rows:
    """What one decoder step reads and rewrites, per row: the read and write LSTMs' states
    (B, D) each and the two memories."""

    read: tuple[Tensor, Tensor]
    write: tuple[Tensor, Tensor]
    tokens: Tensor  # (B, N, L, D)
    doc: Tensor  # (B, N, D)

    def lstm(self) -> Tensor:
        """(B, 4D): the four LSTM vectors, as the cache stores them."""
        return torch.cat([*self.read, *self.write], dim=-1)

    def where(self, active: Tensor, new: Rows) -> Rows:
        """``new`` on the active rows (B,), ``self`` elsewhere."""
        return Rows(
            tuple(keep(active, n, o) for n, o in zip(new.read, self.read, strict=True)),
            tuple(keep(active, n, o) for n, o in zip(new.write, self.write, strict=True)),
            keep(active, new.tokens, self.tokens),
            keep(active, new.doc, self.doc),
        )


def sentence_layout(
    src: Tensor, lengths: Tensor, sentence_id: int, sentence_len: int, pad_id: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Source (B, S) -> ids (B, N, L) in sentence slots, their mask, and sentences per row (B,).

    A sentence starts at position 0 and at every ``sentence_id`` token; one longer than
    L = ``sentence_len`` continues in the next slot."""
    B, S = src.shape
    t = torch.arange(S, device=src.device)
    real = t[None, :] < lengths[:, None]  # (B, S)
    starts = (src == sentence_id) | (t == 0)[None, :]
    start_of = torch.where(starts, t[None, :], 0).cummax(dim=1).values
    offset = t[None, :] - start_of  # position within the sentence
    piece = (offset % sentence_len == 0).long().cumsum(dim=1) - 1  # (B, S) sentence slot
    position = offset % sentence_len
    counts = torch.where(real, piece, -1).max(dim=1).values + 1  # (B,)
    N = max(int(counts.max()), 1) if B else 1
    ids = src.new_full((B, N, sentence_len), pad_id)
    mask = torch.zeros(B, N, sentence_len, dtype=torch.bool, device=src.device)
    rows = torch.arange(B, device=src.device)[:, None].expand(B, S)
    ids[rows[real], piece[real], position[real]] = src[real]
    mask[rows[real], piece[real], position[real]] = True
    return ids, mask, counts


class HierNSE(Seq2SeqBase):
    """The hierarchical NSE encoder-decoder with a pointer-generator output."""

    def __init__(self, cfg: ModelConfig):
        tokens = token_embedding(cfg)
        super().__init__(cfg, tokens)
        D = cfg.d_model
        self.embed = tokens
        self.sentence_nse = NSE(D, D)
        self.document_nse = NSE(D, D)
        self.read = nn.LSTMCell(D, D)
        self.compose = nn.Linear(3 * D, D)
        self.write = nn.LSTMCell(D, D)
        self.readout = nn.Linear(3 * D, D)
        self.switch = nn.Linear(4 * D, 1)  # p_gen
        generable = torch.ones(cfg.vocab_size, dtype=torch.bool)
        generable[cfg.pad_id] = False
        nse = cfg.hier_nse
        if nse.copy_start >= 0:
            generable[nse.copy_start : nse.copy_start + nse.copy_slots] = False
        self.register_buffer("generable", generable, persistent=False)

    # -- encoder ---------------------------------------------------------------------------

    def encode(self, src: Tensor, src_lengths: Tensor) -> NSEMemory:
        """src (B, S), src_lengths (B,) -> the sentence and document memories."""
        cfg = self.config
        nse = cfg.hier_nse
        ids, mask, counts = sentence_layout(
            src, src_lengths, nse.sentence_id, nse.sentence_len, cfg.pad_id
        )
        B, N, L = ids.shape
        D = cfg.d_model
        x = self.embed(ids).view(B * N, L, D)
        flat_mask = mask.view(B * N, L)
        used = flat_mask.any(dim=1).nonzero().squeeze(1)  # sentence slots with tokens
        x_used, mask_used = x.index_select(0, used), flat_mask.index_select(0, used)
        memory, _, (h_w, _) = self.sentence_nse(x_used, mask_used, x_used, mask_used)
        tokens = x.new_zeros(B * N, L, D).index_copy(0, used, memory).view(B, N, L, D)
        vectors = x.new_zeros(B * N, D).index_copy(0, used, h_w).view(B, N, D)
        sentence_mask = torch.arange(N, device=src.device)[None, :] < counts[:, None]
        doc, read_state, write_state = self.document_nse(
            vectors, sentence_mask, vectors, sentence_mask
        )
        return NSEMemory(
            lengths=src_lengths,
            source=src,
            tokens=tokens,
            ids=ids,
            token_mask=mask,
            doc=doc,
            sentences=counts,
            init=torch.cat([*read_state, *write_state], dim=-1),
        )

    # -- decoder ---------------------------------------------------------------------------

    def start(self, memory: NSEMemory, capacity: int = 64) -> DecoderState:
        """An empty state over the memories; the cache holds the LSTM states per slot."""
        B = memory.tokens.shape[0]
        zeros = torch.zeros(B, dtype=torch.long, device=memory.tokens.device)
        lstm_width = 4 * self.config.d_model
        return DecoderState(
            keys=[memory.tokens.new_zeros(B, 1, capacity, lstm_width)],
            values=[],
            lengths=zeros,
            base=zeros.clone(),
            memory_lengths=memory.sentences,
            memory_rows={
                "tokens": memory.tokens,
                "tokens_init": memory.tokens,
                "doc": memory.doc,
                "doc_init": memory.doc,
                "ids": memory.ids,
                "token_mask": memory.token_mask,
                "init": memory.init[:, None],
                "written": zeros[:, None].clone(),
            },
            slot_values={"token": zeros.new_zeros(B, capacity)},
        )

    def _advance(self, rows: Rows, token: Tensor, state: DecoderState) -> tuple[Tensor, Rows]:
        """One token per row (B,): log-probabilities (B, V) and the rewritten rows."""
        B = token.shape[0]
        ids, token_mask = state.memory_rows["ids"], state.memory_rows["token_mask"]
        N = ids.shape[1]
        sentence_mask = (
            torch.arange(N, device=token.device)[None, :] < state.memory_lengths[:, None]
        )
        e = self.embed(token)  # (B, D)
        h_r, c_r = self.read(e, rows.read)
        z_doc = attend(rows.doc, h_r, sentence_mask)  # (B, N)
        within = attend(rows.tokens, h_r[:, None, :].expand(B, N, -1), token_mask)  # (B, N, L)
        z_tok = within * z_doc[..., None]
        m_tok = read_out(rows.tokens.flatten(1, 2), z_tok.flatten(1))  # (B, D)
        m_doc = read_out(rows.doc, z_doc)
        composed = torch.relu(self.compose(torch.cat([h_r, m_tok, m_doc], -1)))
        h_w, c_w = self.write(composed, rows.write)
        new = Rows(
            (h_r, c_r),
            (h_w, c_w),
            write(rows.tokens, z_tok, h_w[:, None, :]),
            write(rows.doc, z_doc, h_w),
        )
        context = torch.cat([h_w, m_tok, m_doc], -1)
        hidden = torch.tanh(self.readout(context))
        vocab = self.logits(hidden[:, None])[:, 0].masked_fill(~self.generable, float("-inf"))
        p_gen = torch.sigmoid(self.switch(torch.cat([context, e], -1)))  # (B, 1)
        copied = torch.zeros_like(vocab).scatter_add(1, ids.flatten(1), z_tok.flatten(1))
        probs = p_gen * torch.softmax(vocab, -1) + (1 - p_gen) * copied
        return torch.log(probs.clamp_min(1e-12)), new

    def _rows(self, state: DecoderState) -> Rows:
        """The rows as of each row's last decoded token (the encoder's states before any)."""
        rows = state.memory_rows
        init = rows["init"][:, 0]
        last = (state.lengths - 1).clamp_min(0)
        batch = torch.arange(state.batch_size, device=last.device)
        cached = state.keys[0][batch, 0, last]  # (B, 4D)
        lstm = torch.where((state.lengths > 0)[:, None], cached, init).chunk(4, dim=-1)
        return Rows(lstm[:2], lstm[2:], rows["tokens"], rows["doc"])

    def _run(self, state: DecoderState, rows: Rows, tokens: Tensor, n_new: Tensor) -> Tensor:
        """Feed tokens (B, K), the first ``n_new[b]`` of each row real, from each row's
        length on: log-probabilities (B, K, V); the state's rows, cache and lengths move on."""
        B, K = tokens.shape
        state.ensure_capacity(int((state.lengths + K).max()))
        batch = torch.arange(B, device=tokens.device)
        outputs = []
        for k in range(K):
            active = k < n_new
            log_probs, new = self._advance(rows, tokens[:, k], state)
            rows = rows.where(active, new)
            live, slot = batch[active], (state.lengths + k)[active]
            state.keys[0][live, 0, slot] = rows.lstm()[active].detach().to(state.keys[0].dtype)
            state.slot_values["token"][live, slot] = tokens[active, k]
            outputs.append(log_probs)
        state.lengths = state.lengths + n_new
        state.memory_rows["tokens"], state.memory_rows["doc"] = rows.tokens, rows.doc
        state.memory_rows["written"] = state.lengths[:, None].clone()
        return torch.stack(outputs, dim=1)

    def _replay(self, state: DecoderState) -> None:
        """Rebuild the memories of a rolled-back state from its kept tokens."""
        kept = state.lengths
        memory_rows = state.memory_rows
        memory_rows["tokens"], memory_rows["doc"] = (
            memory_rows["tokens_init"],
            memory_rows["doc_init"],
        )
        state.lengths = torch.zeros_like(kept)
        memory_rows["written"] = state.lengths[:, None].clone()
        if int(kept.max()) > 0:
            tokens = state.slot_values["token"][:, : int(kept.max())].clone()
            self._run(state, self._rows(state), tokens, kept)

    def step(self, state: DecoderState, tokens: Tensor, n_new: Tensor | None = None) -> Tensor:
        """Append tokens (B, K) to each row; return log-probabilities (B, K, V). Only the
        first ``n_new[b]`` tokens of row b count; outputs past them are unspecified."""
        if n_new is None:
            n_new = torch.full_like(state.lengths, tokens.shape[1])
        if bool((state.memory_rows["written"][:, 0] != state.lengths).any()):
            self._replay(state)
        return self._run(state, self._rows(state), tokens, n_new.to(state.lengths))

    # -- training --------------------------------------------------------------------------

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, states: bool = False
    ) -> Tensor:
        """Teacher-forced log-probabilities (B, T, V): the same ``step`` as decoding, fed
        the whole target at once."""
        if states:
            raise ConfigError("hier_nse has no decoder states for objectives to read")
        state = self.start(self.encode(src, src_lengths), capacity=tgt_in.shape[1])
        return self.step(state, tgt_in)


__all__ = ["HierNSE", "NSEMemory", "Rows", "sentence_layout"]
