"""Accounts of the studio: sign-up and sign-in through OpenID Connect (``oidc`` auth mode),
server-side sessions in the records database, the profile page, and per-user spending
limits in dollars (every auth mode).

- their settings (``WARMPOOL_STUDIO_OIDC_*``, ``WARMPOOL_STUDIO_SPEND_*``, payments) are
  :class:`warmpool.api.settings.AccountSettings`;
- :mod:`.oidc`: the provider (discovery, PKCE authorization URL, code exchange with
  Authlib, ID token verification with joserfc);
- :mod:`.store`: accounts, sessions and pending sign-ins in the database;
- :mod:`.limits`: reservations and spend against the limits;
- :mod:`.routes`: ``/auth/*`` and ``/api/v1/account*``.
"""
