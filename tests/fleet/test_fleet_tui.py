"""The TUI header shows the fleet when the engine runs on PostgreSQL."""

from __future__ import annotations

from tests.fleet.servers import FleetServer, fleet_env
from tests.tui.conftest import running_app, wait_for


async def test_the_header_shows_the_fleet_size_on_postgresql(postgres_cluster, make_settings):
    settings = make_settings(store=postgres_cluster.new_database(), lease_seconds=5)
    async with running_app(settings) as (app, pilot):
        header = app.main_screen.header
        await wait_for(lambda: " · fleet 1" in str(header.content), what="the fleet in the header")
        info = await app.backend.info()
        assert info.fleet is not None and info.fleet["servers"][0]["server_id"] == info.fleet["server_id"]


async def test_the_header_shows_no_fleet_on_sqlite(settings):
    async with running_app(settings) as (app, pilot):
        assert "fleet" not in str(app.main_screen.header.content)
        assert (await app.backend.info()).fleet is None


async def test_the_header_follows_servers_joining_and_leaving_the_fleet(postgres_cluster, make_settings):
    settings = make_settings(store=postgres_cluster.new_database(), lease_seconds=5)
    async with running_app(settings) as (app, pilot):
        header = app.main_screen.header
        await wait_for(lambda: " · fleet 1" in str(header.content), what="a fleet of one")
        other = FleetServer(fleet_env(settings.data_dir, settings.store, VEOTUI_LEASE_SECONDS="5"))
        try:
            other.ready()
            await wait_for(lambda: " · fleet 2" in str(header.content), what="the second server in the header")
        finally:
            other.stop()
        await wait_for(lambda: " · fleet 1" in str(header.content), what="the header to drop the stopped server")
