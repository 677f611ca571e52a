"""The import-job engine: a CSV upload parsed, checked against the catalog and applied by
inventory's ImportProducts, all or nothing, in a task the merchant polls.

routes/imports.py starts a job and answers within IMPORT_SYNC_WAIT_S, or 202 and the
client polls GET /imports/{id}; every gateway pod can answer that poll (ImportJobs).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import nats
from backorder.catalog.v1 import catalog_pb2
from backorder.inventory.v1 import inventory_pb2
from nats.js.api import KeyValueConfig, StorageType
from starlette.requests import Request

from services.common.errors import (
    DomainError,
    ErrorEntry,
    NotFound,
    ValidationFailed,
    error_from_rpc,
    field_error,
    row_error,
)
from services.gateway import csv_format
from services.gateway.admin.http import backend
from services.gateway.admin.queries import query_catalog_by_ids
from services.gateway.auth import Principal

log = logging.getLogger(__name__)

# An import answers synchronously when it finishes within this; else 202 and the client polls.
IMPORT_SYNC_WAIT_S = 25.0
IMPORT_RPC_TIMEOUT_S = 120.0
IMPORT_JOB_TTL_S = 3600.0
IMPORT_JOBS_BUCKET = "backorder_import_jobs"
IMPORT_JOB_PUBLISH_S = 0.5
KV_KEY = re.compile(r"[0-9a-f]{32}")  # an import id as create_import makes it (uuid4().hex)
# The catalog data of a preview serves the apply of the same rows for this long.
PREVIEW_CACHE_TTL_S = 300.0
PREVIEW_CACHE_ENTRIES = 4
OVERWRITE_FIELDS = ("stock", "threshold", "incoming_stock", "back_in_stock_date")
INTERRUPTED_MESSAGE = ("the import was interrupted by a gateway restart; check the products and import "
                       "the file again if needed (applying the same rows twice changes nothing)")


@dataclass
class ImportJob:
    id: str
    store_hash: str
    mode: str
    dry_run: bool
    overwrite: list[str]
    file_name: str
    status: str = "validating"  # validating | applying | validated | completed | failed
    rows: int = 0
    processed: int = 0
    applied: int = 0
    errors: list[ErrorEntry] = field(default_factory=list)
    message: str = ""
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    task: asyncio.Task[None] | None = None
    # Seconds per phase (parse, catalog, inventory), for operators and the benchmark.
    timings: dict[str, float] = field(default_factory=dict)

    def fail(self, message: str, errors: list[ErrorEntry]) -> None:
        """End the job as failed: nothing was applied."""
        self.errors = errors
        self.message = message
        self.status = "failed"

    def fail_with(self, error: DomainError) -> None:
        """End the job as failed for a reason that is not a row's (row 0)."""
        self.fail(error.message, [row_error(0, "", error.code, error.message)])

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "mode": self.mode, "dry_run": self.dry_run,
                "overwrite": self.overwrite, "file_name": self.file_name, "rows": self.rows,
                "processed": self.processed, "applied": self.applied, "errors": self.errors,
                "error_count": len(self.errors), "message": self.message,
                "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "done": self.status in {"validated", "completed", "failed"}}


class ImportJobs:
    """Import jobs: run by the gateway process that received the file, readable from every one.

    A job runs in the process that took the upload; while it runs, that process writes its
    state (the JSON the API returns) to the JetStream key-value bucket `backorder_import_jobs`
    every IMPORT_JOB_PUBLISH_S and once it is done, under `<store_hash>.<job id>` (kept an
    hour). Polls that a load balancer sends to another gateway pod read it from there. Without
    a bucket (unit tests) jobs are only local.

    Also keeps the catalog data a preview (dry run) read, for the apply of the same rows that
    usually follows, so the apply does not read 100,000 products again. Few entries, short TTL.
    """

    def __init__(self, kv: Any = None) -> None:
        self._jobs: dict[str, ImportJob] = {}
        self._previewed: dict[tuple[str, str], tuple[float, dict[int, catalog_pb2.Product]]] = {}
        self._kv = kv
        self._publishers: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, bus: Any) -> ImportJobs:
        """Jobs shared through the bus's key-value bucket (created on first use)."""
        try:
            kv = await bus.js.key_value(IMPORT_JOBS_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            kv = await bus.js.create_key_value(KeyValueConfig(
                bucket=IMPORT_JOBS_BUCKET, history=1, ttl=IMPORT_JOB_TTL_S, storage=StorageType.FILE,
                replicas=bus.replicas, description="admin import jobs' progress, shared by the gateway pods"))
        return cls(kv)

    @staticmethod
    def _key(store_hash: str, job_id: str) -> str:
        return f"{store_hash}.{job_id}"

    def track(self, job: ImportJob) -> None:
        """Publish the job's state while its task runs, and once it ended."""
        if self._kv is None or job.task is None:
            return
        publisher = asyncio.create_task(self._publish_while_running(job))
        self._publishers.add(publisher)
        publisher.add_done_callback(self._publishers.discard)

    async def _publish_while_running(self, job: ImportJob) -> None:
        assert job.task is not None
        while True:
            done = job.task.done()
            try:
                await self._kv.put(self._key(job.store_hash, job.id), json.dumps(job.to_json()).encode())
            except Exception as exc:  # noqa: BLE001 - best effort: this pod still answers for the job
                log.warning("import %s: could not share its progress: %s", job.id, exc)
            if done:
                return
            await asyncio.wait({job.task}, timeout=IMPORT_JOB_PUBLISH_S)

    async def close(self) -> None:
        for publisher in list(self._publishers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher, 5.0)

    def remember_catalog(self, store_hash: str, ids_digest: str, catalog: dict[int, catalog_pb2.Product]) -> None:
        now = time.monotonic()
        self._previewed = {k: v for k, v in self._previewed.items() if v[0] > now}
        while len(self._previewed) >= PREVIEW_CACHE_ENTRIES:
            self._previewed.pop(next(iter(self._previewed)))
        self._previewed[(store_hash, ids_digest)] = (now + PREVIEW_CACHE_TTL_S, catalog)

    def previewed_catalog(self, store_hash: str, ids_digest: str) -> dict[int, catalog_pb2.Product] | None:
        entry = self._previewed.pop((store_hash, ids_digest), None)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def add(self, job: ImportJob) -> None:
        now = time.time()
        self._jobs = {k: j for k, j in self._jobs.items()
                      if j.finished_at is None or now - j.finished_at < IMPORT_JOB_TTL_S}
        self._jobs[job.id] = job

    def running(self) -> list[ImportJob]:
        return [j for j in self._jobs.values() if j.task is not None and not j.task.done()]

    def interrupt_running(self) -> None:
        """Fail and cancel the jobs still running (the gateway is stopping)."""
        for job in self.running():
            assert job.task is not None
            # Said before the cancel, so the state other pods read is not left at "applying".
            job.fail_with(DomainError(INTERRUPTED_MESSAGE, code="interrupted"))
            job.task.cancel()

    def get(self, store_hash: str, job_id: str) -> ImportJob:
        """A job of this process."""
        job = self._jobs.get(job_id)
        if job is None or job.store_hash != store_hash:
            raise NotFound("no such import", details={"import_id": job_id})
        return job

    async def get_json(self, store_hash: str, job_id: str) -> dict[str, Any]:
        """A job's state as the API returns it, from this process or from the bucket."""
        job = self._jobs.get(job_id)
        if job is not None and job.store_hash == store_hash:
            return job.to_json()
        if self._kv is not None and KV_KEY.fullmatch(job_id):
            try:
                entry = await self._kv.get(self._key(store_hash, job_id))
            except nats.js.errors.KeyNotFoundError:
                entry = None
            if entry is not None and entry.value:
                return dict(json.loads(entry.value))
        raise NotFound("no such import", details={"import_id": job_id})


def parse_overwrite(raw: str | None) -> list[str]:
    if raw is None or not raw.strip():
        return list(OVERWRITE_FIELDS)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    bad = [n for n in names if n not in OVERWRITE_FIELDS]
    if bad or not names:
        raise ValidationFailed(f"overwrite takes {', '.join(OVERWRITE_FIELDS)}",
                               errors=[field_error("overwrite", "not_allowed", values=bad)])
    return list(dict.fromkeys(names))


def add_import_rows(out: Any, rows: list[csv_format.ImportRow], catalog: dict[int, catalog_pb2.Product],
                    mode: str) -> None:
    """Append the rows to a repeated ImportRow field, built in place (a message built apart is
    copied into the request, which cost as much as building it)."""
    for row in rows:
        stock = row.current_stock
        product = catalog.get(row.product_id)
        if stock is None and mode == "assign" and product is not None:
            stock = product.current_stock
        item = out.add(
            row=row.row, product_id=str(row.product_id), current_stock="" if stock is None else str(stock),
            backorder_threshold="" if row.backorder_threshold is None else str(row.backorder_threshold),
            incoming_stock=str(row.incoming_stock), back_in_stock_date=row.back_in_stock_date)
        if product is not None:
            item.name = product.name
            item.sku = product.sku
            item.category_ids.extend(product.category_ids)
            item.brand_id = product.brand_id


async def _catalog_of(request: Request, job: ImportJob, ids: list[int]
                      ) -> tuple[dict[int, catalog_pb2.Product], set[int]]:
    """The catalog data of the rows' products, and the ids the catalog does not have. An
    apply reuses what the preview of the same rows just read."""
    jobs: ImportJobs = request.app.state.import_jobs
    digest = hashlib.sha256(array.array("q", ids).tobytes()).hexdigest()
    cached = None if job.dry_run else jobs.previewed_catalog(job.store_hash, digest)
    if cached is not None:
        return cached, set()
    products, missing = await query_catalog_by_ids(request, job.store_hash, ids, timeout_s=IMPORT_RPC_TIMEOUT_S)
    catalog = {p.product_id: p for p in products}
    if job.dry_run and not missing:
        jobs.remember_catalog(job.store_hash, digest, catalog)
    return catalog, set(missing)


async def run_import(request: Request, principal: Principal, job: ImportJob, upload: Any) -> None:
    """Parse + validate in one pass (worker thread), fill from the catalog, then one ImportProducts call.

    Inventory applies all rows or none; nothing is sent when the file itself has errors.
    """
    def progress(rows: int) -> None:
        job.processed = rows

    started = time.perf_counter()
    try:
        try:
            parsed = await asyncio.to_thread(csv_format.parse_import, upload, progress=progress)
            job.timings["parse_s"] = time.perf_counter() - started
        except csv_format.CsvFileError as exc:
            job.fail(exc.message, exc.details.get("errors") or [
                row_error(exc.details.get("row", 0), "", exc.code, exc.message)])
            return
        job.rows = parsed.total_rows
        job.processed = parsed.total_rows
        if parsed.errors:
            job.fail(f"{len(parsed.errors)} problem(s) found; nothing was applied",
                     [e.to_dict() for e in parsed.errors])
            return
        catalog: dict[int, catalog_pb2.Product] = {}
        if job.mode == "assign":
            phase = time.perf_counter()
            catalog, missing = await _catalog_of(request, job, [r.product_id for r in parsed.rows])
            job.timings["catalog_s"] = time.perf_counter() - phase
            if missing:
                job.fail(f"{len(missing)} unknown product id(s); nothing was applied",
                         [row_error(r.row, "product_id", "unknown_product",
                                    f"product {r.product_id} is not in the store's catalog")
                          for r in parsed.rows if r.product_id in missing][:csv_format.MAX_REPORTED_ERRORS])
                return
        job.status = "validating" if job.dry_run else "applying"
        phase = time.perf_counter()
        import_request = inventory_pb2.ImportProductsRequest(
            store_hash=principal.store_hash,
            mode=inventory_pb2.IMPORT_MODE_ASSIGN if job.mode == "assign" else inventory_pb2.IMPORT_MODE_UPDATE,
            overwrite=job.overwrite, dry_run=job.dry_run, actor=principal.actor, import_id=job.id)
        add_import_rows(import_request.rows, parsed.rows, catalog, job.mode)
        reply = await backend(request, "inventory").ImportProducts(import_request, timeout=IMPORT_RPC_TIMEOUT_S)
        job.timings["inventory_s"] = time.perf_counter() - phase
        job.errors = [row_error(e.row, e.column, e.code, e.message)
                      for e in reply.errors][:csv_format.MAX_REPORTED_ERRORS]
        job.applied = reply.applied
        if job.errors:
            job.status = "failed"
            job.message = f"{len(reply.errors)} problem(s) found; nothing was applied"
        elif job.dry_run:
            job.status = "validated"
            job.message = f"{job.rows} row(s) are valid and ready to apply"
        else:
            job.status = "completed"
            job.message = f"{job.applied} product(s) {'assigned' if job.mode == 'assign' else 'updated'}"
    except Exception as exc:  # noqa: BLE001 - the job must end in a state the merchant can read
        if isinstance(exc, DomainError):
            error = exc
        elif isinstance(exc, grpc.RpcError):
            error = error_from_rpc(exc)
        else:
            log.exception("import %s failed", job.id)
            error = DomainError("internal error", code="internal")
        log.warning("import %s for store %s failed: %s", job.id, job.store_hash, error.code)
        job.fail_with(error)
    finally:
        job.timings["total_s"] = time.perf_counter() - started
        job.finished_at = time.time()
        close = getattr(upload, "close", None)
        if close is not None:
            close()


