"""CPU a document takes to sign, in one process, on the documents of a scanned database.

    python benchmarks/sign_cpu.py DB [--limit 20000] [--work /tmp/sign-cpu]

A copy of DB (it is not touched) has every document set back to pending; they are then signed in
id order as a scan's workers sign them (ingest.sign_chunk, SIGN_CHUNK documents a call, the
site's learned lines) and saved as a scan saves them (SAVE_SIGNED a transaction), so that a copy
finds the documents signed before it in the database as it would in a scan. Only the CPU of the
sign_chunk calls is counted. Prints the CPU per document and how many documents were shingled and
signed (the others took what signing made of the same words from a document signed before).

The figure leaves out what a scan adds around it (the scanning process's saving, the workers'
messages, two cores shared), and is steadier than a full scan's stage time on a machine whose
speed drifts: compare two versions of the code by alternating runs of this script.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", type=Path, help="a database scanned by dedup (copied, not changed)")
    ap.add_argument("--limit", type=int, default=0, help="sign only the first N documents (by id)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/dedup-sign-cpu"), help="where the copy goes")
    a = ap.parse_args()

    from dedup import ingest
    from dedup.models import Params
    from dedup.store import Store

    if a.work.exists():
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True)
    db = a.work / "sign.db"
    shutil.copy(a.db, db)
    store = Store(db)
    with store.write():
        store.conn.execute("UPDATE documents SET status = 'pending' WHERE status IN ('ok', 'too_short')")
    sql = "SELECT id FROM documents WHERE status = 'pending' ORDER BY id" + (" LIMIT ?" if a.limit else "")
    ids = [r[0] for r in store.db.execute(sql, [a.limit] if a.limit else [])]
    if not ids:
        print(f"{a.db}: no signed documents", file=sys.stderr)
        return 1
    ingest.load_tokenizer()
    ingest.load_names()
    ingest.init_worker(Params(), None, store.learned(), str(db))
    signed = 0
    real = getattr(ingest, "sign_tokens", None)  # (code from before copies were signed once: none)

    def counting(doc, tokens, params):
        nonlocal signed
        signed += 1
        return real(doc, tokens, params)

    if real is not None:
        ingest.sign_tokens = counting
    cpu = 0.0
    pending: list = []
    for k in range(0, len(ids), ingest.SIGN_CHUNK):
        t = time.process_time()
        rows = ingest.sign_chunk(ids[k : k + ingest.SIGN_CHUNK])
        cpu += time.process_time() - t
        pending += [r for r in rows if not isinstance(r, ingest.Skipped)]
        if len(pending) >= ingest.SAVE_SIGNED:
            store.save_signatures(pending)
            pending = []
    if pending:
        store.save_signatures(pending)
    store.close()
    copies = f"{signed:,} shingled and signed, {len(ids) - signed:,} took the signatures of the same words"
    print(f"{len(ids):,} documents: sign_chunk CPU {cpu:.2f} s = {cpu / len(ids) * 1e6:.0f} us a document"
          + (f"; {copies}" if real is not None else ""))  # fmt: skip
    shutil.rmtree(a.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
