// The README's "Building a frontend" code, run as a Next.js app would run it. The modules
// under ./frontend/lib are extracted from the README by tests/consumers/test_typescript_client.py;
// this program only calls them, against the live server, and prints a JSON summary.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tokenFromBetterAuth, tokenFromRoute } from "./frontend/lib/api-token.js";
import { fetchJson } from "./frontend/lib/fetch-json.js";
import { fieldErrors, type FieldErrors } from "./frontend/lib/field-errors.js";
import { signApiToken } from "./frontend/lib/sign-token.js";
import {
  ApiError,
  createTask,
  deleteTask,
  listTasks,
  type Status,
  tasksApi,
  toggleTask,
} from "./frontend/lib/tasks-api.js";

const { API_URL, USER_ID, SECRET } = process.env;
if (!API_URL || !USER_ID || !SECRET) {
  throw new Error("Set API_URL, USER_ID and SECRET");
}
const apiUrl: string = API_URL;
const userId: string = USER_ID;
const secret: string = SECRET;

// Stands in for app/api/token/route.ts: the same signing function behind a GET.
async function tokenRoute(): Promise<{ url: string; close: () => void }> {
  const server = createServer((_request, response) => {
    void signApiToken(userId, secret).then((token) => {
      response.setHeader("Content-Type", "application/json");
      response.end(JSON.stringify({ token }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/api/token`, close: () => server.close() };
}

async function refused(call: () => Promise<unknown>): Promise<{ status: number; fields: FieldErrors }> {
  try {
    await call();
  } catch (error) {
    if (error instanceof ApiError && error.problem) {
      return { status: error.status, fields: fieldErrors(error.problem) };
    }
    throw error;
  }
  throw new Error("expected the API to refuse the call");
}

async function main(): Promise<void> {
  const route = await tokenRoute();
  const api = tasksApi(apiUrl, tokenFromRoute(route.url));
  // A stand-in for Better Auth's client: its token() answers as authClient.token() does.
  const viaPlugin = tasksApi(
    apiUrl,
    tokenFromBetterAuth({
      token: async () => ({ data: { token: await signApiToken(userId, secret) }, error: null }),
    }),
  );

  const milk = await createTask(api, userId, { title: "Buy milk", priority: "high" });
  const rejected = await createTask(api, userId, { title: "", due_date: "2026-02-30" });
  const kept = await createTask(viaPlugin, userId, { title: "Call the bank" });
  if (!("task" in milk) || !("task" in kept)) throw new Error("create failed");
  const toggled = await toggleTask(api, userId, milk.task.id);
  const completed = await listTasks(viaPlugin, userId, "completed");
  await deleteTask(api, userId, milk.task.id);
  const pending = await listTasks(api, userId);

  const headers = { Authorization: `Bearer ${await signApiToken(userId, secret)}` };
  const tasks = `${apiUrl}/api/${userId}/tasks`;
  const unknown = await refused(() =>
    fetchJson(tasks, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ title: "", priority: "urgent", due_date: "2026-02-30", category: "home" }),
    }),
  );
  const parameters = await refused(() => listTasks(api, userId, "done" as Status));
  const deletedAgain = await refused(() => deleteTask(api, userId, milk.task.id));
  const extra = await createTask(api, userId, { title: "Deleted through fetchJson" });
  if (!("task" in extra)) throw new Error("create failed");
  const deletedByWrapper = await fetchJson(`${tasks}/${extra.task.id}`, { method: "DELETE", headers });
  route.close();

  console.log(
    JSON.stringify({
      created: milk.task,
      rejected,
      toggled,
      completed,
      pending,
      unknown,
      parameters,
      deletedAgain,
      deletedByWrapper: deletedByWrapper === undefined ? "undefined" : deletedByWrapper,
      kept: kept.task,
    }),
  );
}

await main();
