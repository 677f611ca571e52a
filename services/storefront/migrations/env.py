from services.common.migrations import run_env
from services.storefront.tables import metadata

run_env(metadata)
