"""One module per worker role, each with ``register(app, ctx)``: how the role is wired onto the
faust app (agents, timers, services). What a role does lives beside it in streams/ (the
scorer, the learner, the dispatcher, the trainer, the forecaster) and streams/monitor/. The
table of roles (each role's module, imported where the role runs) is
``riverwatch.streams.app.ROLES``."""
