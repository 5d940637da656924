// The OpenID Connect provider of the tests and of `warmpool-sim dev --oidc`: the npm package
// oidc-provider (OpenID-certified), with its development interactions (any login, any
// password) and one client for the studio. Configured by environment variables:
//
//   OIDC_PORT            port to listen on (0 = a free one)         default 0
//   OIDC_CLIENT_ID       the studio's client id                     default warmpool-studio
//   OIDC_CLIENT_SECRET   its secret (client_secret_basic)           required
//   OIDC_REDIRECT_URIS   comma-separated redirect URIs of the studio required
//   OIDC_ADMIN_GROUP     group given to logins starting with "admin" default warmpool-admins
//   OIDC_ID_TOKEN_TTL    ID token lifetime, seconds                 default 3600
//   OIDC_APPLICATION_TYPE web, or native: then an http://127.0.0.1 redirect URI matches on
//                        any port (RFC 8252 7.3; the tests' studios listen on free ports),
//                        and so does a post-logout redirect URI (the library compares those
//                        exactly: its check is widened here to the same loopback rule)
//
// Prints one JSON line on stdout when it listens: {"issuer": "http://127.0.0.1:<port>"}.
// Accounts: the login is the account id; its e-mail is <login>@example.test, and a login
// starting with "admin" is in OIDC_ADMIN_GROUP.
import http from "node:http";
import Provider from "oidc-provider";

const env = process.env;
const adminGroup = env.OIDC_ADMIN_GROUP || "warmpool-admins";
const required = (name) => {
  if (!env[name]) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return env[name];
};

function account(id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: `${id}@example.test`,
        email_verified: true,
        name: id,
        preferred_username: id,
        groups: id.startsWith("admin") ? [adminGroup] : [],
      };
    },
  };
}

const server = http.createServer();
server.listen(Number(env.OIDC_PORT || 0), "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: env.OIDC_CLIENT_ID || "warmpool-studio",
        client_secret: required("OIDC_CLIENT_SECRET"),
        redirect_uris: required("OIDC_REDIRECT_URIS").split(","),
        post_logout_redirect_uris: required("OIDC_REDIRECT_URIS")
          .split(",")
          .map((u) => new URL("/", u).href),
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
        application_type: env.OIDC_APPLICATION_TYPE || "web",
      },
    ],
    async findAccount(_ctx, id) {
      return account(id);
    },
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name", "preferred_username"],
      groups: ["groups"],
    },
    scopes: ["openid", "email", "profile", "groups"],
    // The claims in the ID token as Keycloak or Google put them (not only at userinfo).
    conformIdTokenClaims: false,
    pkce: { methods: ["S256"], required: () => true },
    features: { devInteractions: { enabled: true } },
    ttl: { IdToken: Number(env.OIDC_ID_TOKEN_TTL || 3600) },
    cookies: { keys: [Math.random().toString(36).slice(2) + Date.now().toString(36)] },
  });
  if ((env.OIDC_APPLICATION_TYPE || "web") === "native") {
    const exact = provider.Client.prototype.postLogoutRedirectUriAllowed;
    provider.Client.prototype.postLogoutRedirectUriAllowed = function loopback(value) {
      if (exact.call(this, value)) return true;
      const given = URL.canParse(value) ? new URL(value) : null;
      if (!given || given.protocol !== "http:" || given.hostname !== "127.0.0.1") return false;
      given.port = "";
      return this.postLogoutRedirectUris.some((u) => new URL(u).href === given.href);
    };
  }
  server.on("request", provider.callback());
  console.log(JSON.stringify({ issuer }));
});

for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
