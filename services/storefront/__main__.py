from services.storefront.server import main

main()
