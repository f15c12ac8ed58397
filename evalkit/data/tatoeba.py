"""mixed_lang/tatoeba: Mandarin sentence -> its English translation, as MTEB's Tatoeba.

Source: ``tatoeba/tatoeba.cmn-eng.{cmn,eng}`` (LASER's Tatoeba test set, 1,000 aligned
lines; the file MTEB's ``Tatoeba`` task, subset ``cmn-eng``, is built from). sentence1 = cmn,
sentence2 = eng, line by line, nothing dropped: scores are comparable with MTEB's.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.data.store import PairData
from evalkit.errors import DataError

VERSION = "1"


def raw_paths(raw_dir: Path) -> list[Path]:
    base = raw_dir / "tatoeba" / "tatoeba.cmn-eng"
    return [Path(f"{base}.cmn"), Path(f"{base}.eng")]


def build(raw_dir: Path) -> PairData:
    p_cmn, p_eng = raw_paths(raw_dir)
    cmn = p_cmn.read_text(encoding="utf-8").splitlines()
    eng = p_eng.read_text(encoding="utf-8").splitlines()
    if len(cmn) != len(eng):
        raise DataError(f"{p_cmn} has {len(cmn)} lines but {p_eng} has {len(eng)}: files must be aligned")
    return PairData(pairs=list(zip(cmn, eng)))
