"""The configured text front end (`text.symbols`, `text.cleaners`, `text.add_eos`) applied to transcripts:
which texts encode to nothing, and which characters the symbol table drops."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from taco_jax.config import ConfigError, TextConfig
from taco_jax.text import get_symbol_table, text_to_sequence


class FrontEnd:
    """Encodes texts as the trainer will (cleaners, then the symbol table)."""

    def __init__(self, text_cfg: TextConfig):
        try:
            self.table = get_symbol_table(text_cfg.symbols)
            text_to_sequence("a", self.table, text_cfg.cleaners, text_cfg.add_eos)  # unknown cleaner, eos
        except ValueError as e:
            raise ConfigError(f"config key 'text': {e}") from None
        self.cfg = text_cfg

    def encode(self, text: str) -> tuple[int, Counter[str]]:
        """(number of symbols the text encodes to, EOS not counted; the characters the table drops, counted)."""
        ids, dropped = text_to_sequence(text, self.table, self.cfg.cleaners, self.cfg.add_eos)
        return len(ids) - int(self.cfg.add_eos), dropped

    def coverage(self, texts: Iterable[str]) -> dict[str, Any]:
        """Symbol coverage of `texts`: encoded symbols, dropped characters (most frequent first, with counts),
        and how many texts lost at least one character."""
        dropped: Counter[str] = Counter()
        n_symbols = n_texts = n_affected = 0
        for text in texts:
            n, lost = self.encode(text)
            n_symbols += n
            n_texts += 1
            n_affected += bool(lost)
            dropped.update(lost)
        n_dropped = sum(dropped.values())
        return {
            "symbols": self.cfg.symbols,
            "cleaners": list(self.cfg.cleaners),
            "texts": n_texts,
            "texts_with_dropped_characters": n_affected,
            "encoded_symbols": n_symbols,
            "dropped_characters": n_dropped,
            "kept_fraction": round(n_symbols / (n_symbols + n_dropped), 6) if n_symbols + n_dropped else 1.0,
            "dropped": dict(dropped.most_common()),
        }
