"""Accounts of the studio: sign-up and sign-in through OpenID Connect (``oidc`` auth mode),
server-side sessions in the records database, the profile page, and per-user spending
limits in dollars (every auth mode).

- :mod:`.settings`: the ``WARMPOOL_STUDIO_OIDC_*`` and ``WARMPOOL_STUDIO_SPEND_*`` settings;
- :mod:`.oidc`: the provider (discovery, PKCE authorization URL, code exchange with
  Authlib, ID token verification with joserfc);
- :mod:`.store`: accounts, sessions and pending sign-ins in the database;
- :mod:`.limits`: reservations and spend against the limits;
- :mod:`.routes`: ``/auth/*`` and ``/api/v1/account*``.
"""
