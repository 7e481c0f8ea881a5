// A real OpenID provider for the tests: panva's oidc-provider with its development
// interactions (a login form that takes any password, then a consent form), PKCE required.
//
//   OIDC_PORT=4011 OIDC_CLIENT_ID=issues OIDC_CLIENT_SECRET=s3cret \
//   OIDC_REDIRECT_URIS=http://issues.test/auth/oidc/callback node tests/oidc/provider.mjs
//
// Accounts: the login typed in the form is the account. "unverified:ann@example.com" is an
// account whose address the provider has not verified; any other login containing "@" is an
// account with that address, verified; "noemail" has no address at all. The subject is
// derived from the login, so the same login is the same person every time.
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://localhost:${port}`;

function accountFor(login) {
  const unverified = login.startsWith('unverified:');
  const email = unverified ? login.slice('unverified:'.length) : login;
  return {
    accountId: login,
    async claims() {
      const claims = { sub: `sub-${Buffer.from(login).toString('hex')}` };
      if (email.includes('@')) {
        claims.email = email;
        claims.email_verified = !unverified;
        claims.name = email.split('@')[0].replace(/[._]/g, ' ');
      }
      return claims;
    },
  };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: process.env.OIDC_REDIRECT_URIS.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, id) {
    return accountFor(id);
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'email', 'profile'],
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['tests-only-cookie-key'] },
});
// Plain http on localhost is what the tests have: let its cookies through.
provider.proxy = false;

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
