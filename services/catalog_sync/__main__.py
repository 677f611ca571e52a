from services.catalog_sync.server import main

main()
