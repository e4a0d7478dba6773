// The real better-auth library, set up as the README's "Using with Better Auth" section says:
// one instance per signing algorithm given on the command line, each served on its own
// loopback port (so its JWKS is at {baseURL}/api/auth/jwks). Two users sign up through the
// client, and each makes the README's API request with the token from the client's token call.
// Prints one JSON line {"instances": [{alg, baseURL, users: [{id, email, request}]}]}, where
// `request` is the API request the README's code made (recorded here, sent by the Python test),
// then serves until stdin closes. tests/consumers/test_better_auth_interop.py checks that every line of the
// README's snippets appears in this file.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";

const TASKS_API = "http://tasks-api.invalid";

function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });
}

function createAuth(alg, baseURL) {
  const options = {
    baseURL,
    secret: randomBytes(32).toString("hex"),
    database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
    emailAndPassword: { enabled: true },
  };
  if (alg !== "EdDSA") {
    return betterAuth({ ...options, plugins: [jwt({ jwks: { keyPairConfig: { alg } } })] });
  }
  // The plugin's defaults, exactly as an unmodified install (and the README) has them.
  const auth = betterAuth({
    ...options,
    plugins: [jwt()],
  });
  return auth;
}

async function startInstance(alg) {
  const server = createServer();
  const port = await listen(server);
  const baseURL = `http://127.0.0.1:${port}`;
  server.on("request", toNodeHandler(createAuth(alg, baseURL)));
  const users = [];
  for (const name of ["Ada", "Grace"]) {
    users.push(await signUpAndCallTheApi(baseURL, name));
  }
  return { alg, baseURL, users };
}

function browserLikeClient(baseURL) {
  // A browser on the app's own origin sends Origin and keeps the session cookie; here the
  // client's hooks do both.
  let cookie = "";
  const authClient = createAuthClient({
    baseURL,
    plugins: [jwtClient()],
    fetchOptions: {
      onRequest: (context) => {
        context.headers.set("origin", baseURL);
        if (cookie) context.headers.set("cookie", cookie);
        return context;
      },
      onResponse: ({ response }) => {
        const set = response.headers.getSetCookie().map((c) => c.split(";")[0]);
        if (set.length > 0) cookie = set.join("; ");
      },
    },
  });
  return authClient;
}

async function signUpAndCallTheApi(baseURL, name) {
  const authClient = browserLikeClient(baseURL);
  const email = `${name.toLowerCase()}-${randomBytes(4).toString("hex")}@example.com`;
  const signUp = await authClient.signUp.email({ email, password: "correct horse battery", name });
  if (signUp.error) throw new Error(`sign-up failed: ${JSON.stringify(signUp.error)}`);
  const { data: session } = await authClient.getSession();
  const request = await callTheApi(authClient, session);
  return { id: signUp.data.user.id, email, request };
}

async function callTheApi(authClient, session) {
  // The README's code, word for word; this `fetch` records the request for the Python test.
  const fetch = async (url, init) => ({ path: url.slice(TASKS_API.length), ...init });
  const { data, error } = await authClient.token();
  if (error) throw new Error(`token call failed: ${JSON.stringify(error)}`);
  const response = await fetch(`${TASKS_API}/api/${session.user.id}/tasks`, {
    headers: { Authorization: `Bearer ${data.token}` },
  });
  return response;
}

const instances = [];
for (const alg of process.argv.slice(2)) {
  instances.push(await startInstance(alg));
}
process.stdout.write(`${JSON.stringify({ instances })}\n`);
// Serve the JWKS until the test closes our stdin (or dies).
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
