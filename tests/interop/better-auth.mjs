// The real better-auth library, set up as a Next.js app sets it up: one instance per signing
// algorithm given on the command line, each served on its own loopback port (so its JWKS is
// at {baseURL}/api/auth/jwks). Two users sign up through the client, and each gets a JWT from
// the client's token call, exactly as a frontend does. Prints one JSON line
// {"instances": [{alg, baseURL, users: [{id, email, token}]}]}, then serves until stdin closes.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";

function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });
}

function jwtPlugin(alg) {
  // EdDSA is the plugin's default: that instance is the unmodified install.
  return alg === "EdDSA" ? jwt() : jwt({ jwks: { keyPairConfig: { alg } } });
}

async function startInstance(alg) {
  const server = createServer();
  const port = await listen(server);
  const baseURL = `http://127.0.0.1:${port}`;
  const auth = betterAuth({
    baseURL,
    secret: randomBytes(32).toString("hex"),
    database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
    emailAndPassword: { enabled: true },
    plugins: [jwtPlugin(alg)],
  });
  server.on("request", toNodeHandler(auth));
  const users = [];
  for (const name of ["Ada", "Grace"]) {
    users.push(await signUpAndGetToken(baseURL, name));
  }
  return { alg, baseURL, users };
}

async function signUpAndGetToken(baseURL, name) {
  // A browser on the app's own origin sends Origin and keeps the session cookie; here we
  // send the one and carry the other from sign-up to the token call.
  let cookie = "";
  const authClient = createAuthClient({
    baseURL,
    plugins: [jwtClient()],
    fetchOptions: {
      headers: { origin: baseURL },
      onResponse: ({ response }) => {
        const set = response.headers.getSetCookie().map((c) => c.split(";")[0]);
        if (set.length > 0) cookie = set.join("; ");
      },
    },
  });
  const email = `${name.toLowerCase()}-${randomBytes(4).toString("hex")}@example.com`;
  const signUp = await authClient.signUp.email({ email, password: "correct horse battery", name });
  if (signUp.error) throw new Error(`sign-up failed: ${JSON.stringify(signUp.error)}`);
  const { data, error } = await authClient.token({
    fetchOptions: { headers: { origin: baseURL, cookie } },
  });
  if (error) throw new Error(`token call failed: ${JSON.stringify(error)}`);
  return { id: signUp.data.user.id, email, token: data.token };
}

const instances = [];
for (const alg of process.argv.slice(2)) {
  instances.push(await startInstance(alg));
}
process.stdout.write(`${JSON.stringify({ instances })}\n`);
// Serve the JWKS until the test closes our stdin (or dies).
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
