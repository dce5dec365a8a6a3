"""Proactive messaging, one core for every feature that writes first.

- :mod:`bot.outreach.jobs`: the periodic-job runner the runtime owns (``runtime.jobs``): one
  clock, one way to wake a job and to stop them all, a failing round logged and retried.
- :mod:`bot.outreach.reach`: :func:`choose_reach`, which applies consent, the channel's
  capability and quiet hours to every proactive message and returns one :class:`Decision`.
- :mod:`bot.outreach.windows`: one grammar for time windows (working hours, quiet hours,
  delivery windows) and weekday names per locale.
- :mod:`bot.outreach.stats`: what one round did (:class:`RoundStats`).
"""
