from services.catalog_sync.tables import metadata
from services.common.migrations import run_env

run_env(metadata)
