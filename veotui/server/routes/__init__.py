"""The server's routes, one module per resource. Each module's ``add_routes`` registers its
routes on the application's own router, next to those of the other modules.

They are added to ``app.router`` itself rather than through ``include_router``: an included
router dispatches through a layer of its own and rebuilds every route's handler, which would
drop ``PlainRoute``'s plain endpoint and add a hop to every request.
"""
