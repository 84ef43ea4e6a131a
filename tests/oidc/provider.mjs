// A real OpenID provider for the tests (issue 20.2): node-oidc-provider 8 (panva), the
// certified implementation, run on loopback with one confidential client. Its accounts come
// from a JSON file the test edits while it runs (ACCOUNTS): a login may carry amr/acr, an
// account marked "disabled" is no longer found (refresh grants then fail: the IdP-side
// disablement). The login page is ours (the library ships none for production): a form
// with the login name, whose result carries the account's amr and grants the requested
// scopes at once (consent included), as a company IdP with pre-approved apps does.
//
//   node tests/oidc/provider.mjs  (env: PORT, CLIENT_SECRET, REDIRECT_URI, ACCOUNTS)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { URLSearchParams } from 'node:url';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = () => JSON.parse(readFileSync(process.env.ACCOUNTS, 'utf8'));

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'cipherdesk',
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true, methods: ['S256'] },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  claims: { openid: ['sub', 'amr', 'acr'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = accounts()[sub];
    if (!account || account.disabled) return undefined;
    return {
      accountId: sub,
      async claims() {
        const { email, email_verified: verified = true, name, groups = [] } = account;
        return { sub, email, email_verified: verified, name, groups };
      },
    };
  },
  ttl: { RefreshToken: 3600, Session: 3600, Interaction: 600, Grant: 3600 },
  cookies: { keys: ['test-only-cookie-key'] },
});
provider.proxy = false;

const page = (uid, error) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Company sign-in</title></head><body><main><h1>Company sign-in</h1>
${error ? `<p id="idp-error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label for="login">Login</label> <input id="login" name="login" autofocus>
<button type="submit">Sign in</button></form></main></body></html>`;

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page(details.uid));
    return;
  }
  const form = await readForm(req);
  const found = Object.entries(accounts()).find(([, a]) => a.login === form.get('login'));
  if (!found || found[1].disabled) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page(details.uid, 'Unknown or disabled account'));
    return;
  }
  const [sub, account] = found;
  const grant = new provider.Grant({ accountId: sub, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  const login = { accountId: sub };
  if (account.amr) login.amr = account.amr;
  if (account.acr) login.acr = account.acr;
  await provider.interactionFinished(req, res, { login, consent: { grantId } }, {
    mergeWithLastSubmission: false,
  });
}

const callback = provider.callback();
http.createServer((req, res) => {
  if (req.url === '/favicon.ico') {  // the browser asks; nothing to log as an error
    res.writeHead(204);
    res.end();
    return;
  }
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(String(err && err.message));
    });
    return;
  }
  callback(req, res);
}).listen(port, '127.0.0.1', () => console.log(`oidc provider ready on ${issuer}`));
