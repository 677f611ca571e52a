from tests.integration.gateway.admin_support import catalog_products, login


async def test_a_merchant_opens_the_app_and_lists_products(platform):
    session = await login(platform)
    products = await catalog_products(platform, session)
    assert products
