"""CSV import through the admin endpoint (issue 6): 100,000 rows validated and applied, end to end.

POST /api/v1/imports (multipart) on the gateway → stream parse + row validation in one pass →
catalog_sync GetProducts (assign mode: names, SKUs, default stock) → one
InventoryService.ImportProducts call (set-based apply on PostgreSQL) → the job is polled until
done. Times, in this order:

1. assign, dry run (the preview; its rows in reverse order, so the apply below cannot reuse the
   catalog data the preview read: the apply is measured as it runs without a preview);
2. assign, apply;
3. update of every column, apply, at once (platform busy: catalog_sync is writing the 100,000
   fresh assignments back to BigCommerce and the services consume 100,000 events, all in this
   process);
4. the same update with other values once the platform has settled (no pending JetStream
   message, the store's BigCommerce API traffic stopped; bounded by --settle-timeout). With
   every service, the sandbox and the gateway in this one process (one GIL), the write-backs
   of 100,000 assignments take far longer than any sensible timeout (about 70 events/s on the
   shared machine), so if the platform has not settled by then the bench stops catalog_sync's
   and storefront's consumers, waits for inventory's outbox and the sandbox to go quiet, and
   measures the update with the platform idle (labelled so, with what was left pending).

Each line also gives the CPU seconds this process used during the import (every service runs
in it) and the load average.

Usage: .venv/bin/python bench/admin_import.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
       [--rows 100000] [--settle-timeout 600]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from admin_stack import HEADER, admin_stack


async def run(admin_url: str, rows: int, settle_timeout_s: float) -> None:
    async with admin_stack(admin_url, rows) as (_stack, client, ids):
        ids = ids[:rows]
        assign = HEADER + "".join(f"{pid},{pid % 50},{pid % 7 or ''},0,\n" for pid in ids)
        preview = HEADER + "".join(f"{pid},{pid % 50},{pid % 7 or ''},0,\n" for pid in reversed(ids))
        update = HEADER + "".join(f"{pid},{pid % 40},{pid % 9},{pid % 5},2027-01-15\n" for pid in ids)
        update_again = HEADER + "".join(f"{pid},{pid % 30},{pid % 8},{pid % 4},2027-02-15\n" for pid in ids)
        print(f"file sizes: assign {len(assign) / 1e6:.1f} MB, update {len(update) / 1e6:.1f} MB", flush=True)
        print(f"platform settled in {await client.settle():.0f} s", flush=True)
        steps = [("assign, dry run (preview, rows reversed)", preview, "assign", True),
                 ("assign, apply (no preview: catalog looked up)", assign, "assign", False),
                 ("update all columns, apply, platform BUSY (write-backs of the assign running)", update, "update",
                  False),
                 (None, "", "", False),
                 ("update all columns, apply, platform SETTLED", update_again, "update", False)]
        for index in range(len(steps)):
            label, text, mode, dry_run = steps[index]
            if label is None:
                waited = await client.settle(settle_timeout_s)
                if waited < settle_timeout_s:
                    print(f"platform settled again in {waited:.0f} s (write-backs and events of the assign and the "
                          "update)", flush=True)
                    continue
                print(f"not settled after {waited:.0f} s; {await client.pause_background()}", flush=True)
                steps[-1] = ("update all columns, apply, platform IDLE (backlog left pending, consumers stopped)",
                             *steps[-1][1:])
                continue
            load = os.getloadavg()[0]
            cpu = time.process_time()
            job, seconds = await client.import_csv(text, mode=mode, dry_run=dry_run)
            cpu = time.process_time() - cpu
            assert job["status"] in {"validated", "completed"}, job
            print(f"{label}: {len(ids)} rows in {seconds:.2f} s ({len(ids) / seconds:,.0f} rows/s); "
                  f"status {job['status']}, applied {job['applied']}; phases {job['timings']}; "
                  f"process CPU {cpu:.1f} s; load avg {load:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--settle-timeout", type=float, default=600.0,
                        help="seconds to wait at most for the platform to settle before the settled update")
    args = parser.parse_args()
    asyncio.run(run(args.admin_url, args.rows, args.settle_timeout))


if __name__ == "__main__":
    main()
