"""CSV import through the admin endpoint (issue 6): 100,000 rows validated and applied, end to end.

POST /api/v1/imports (multipart) on the gateway → stream parse + row validation in one pass →
catalog_sync GetProducts (assign mode: names, SKUs, default stock) → one
InventoryService.ImportProducts call (set-based apply on PostgreSQL) → the job is polled until
done. Times: assign (dry run), assign (apply), update of every column (apply).

Usage: .venv/bin/python bench/admin_import.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
       [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio

from admin_stack import HEADER, admin_stack


async def run(admin_url: str, rows: int) -> None:
    async with admin_stack(admin_url, rows) as (_stack, client, ids):
        ids = ids[:rows]
        assign = HEADER + "".join(f"{pid},{pid % 50},{pid % 7 or ''},0,\n" for pid in ids)
        update = HEADER + "".join(f"{pid},{pid % 40},{pid % 9},{pid % 5},2027-01-15\n" for pid in ids)
        print(f"file sizes: assign {len(assign) / 1e6:.1f} MB, update {len(update) / 1e6:.1f} MB", flush=True)
        print(f"platform settled in {await client.settle():.0f} s", flush=True)
        # The update runs right after the assign, while catalog_sync is still writing the
        # 100,000 assignments back to BigCommerce (settling would take tens of minutes).
        for label, text, mode, dry_run in (("assign, dry run", assign, "assign", True),
                                           ("assign, apply", assign, "assign", False),
                                           ("update all columns, apply (platform busy)", update, "update", False)):
            job, seconds = await client.import_csv(text, mode=mode, dry_run=dry_run)
            assert job["status"] in {"validated", "completed"}, job
            print(f"{label}: {len(ids)} rows in {seconds:.2f} s ({len(ids) / seconds:,.0f} rows/s); "
                  f"status {job['status']}, applied {job['applied']}; phases {job['timings']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(run(args.admin_url, args.rows))


if __name__ == "__main__":
    main()
