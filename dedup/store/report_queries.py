"""What the HTML report reads beyond the cluster queries of `results`: the members' texts."""

from __future__ import annotations

import json

from dedup.store.base import in_chunks


class ReportQueriesMixin:
    """Reads for dedup.html_report; needs self.db from Connection."""

    def document_texts(self, ids: list[int]) -> dict[int, dict]:
        """Document id -> its stored text (as published), the boilerplate lines taken out of it
        and the title a 原标题 line gives; ids not stored are left out."""
        out: dict[int, dict] = {}
        for part, marks in in_chunks(sorted(set(ids))):
            for r in self.db.query(
                f"SELECT id, text, boilerplate, original_title FROM documents WHERE id IN ({marks})", part
            ):
                out[r["id"]] = {
                    "text": r["text"] or "",
                    "boilerplate": json.loads(r["boilerplate"] or "[]"),
                    "original_title": r["original_title"],
                }
        return out
