"""The Dash monitoring app: live alerts, alert drill-down, load tests, model and pipeline pages.

Split as the house style asks: ``layout`` (pure component builders), ``figures`` (pure
data -> figure), ``data`` (parameterised queries through one pool), ``callbacks`` (thin
glue); ``app`` builds the Dash app and exposes ``server``.
"""
