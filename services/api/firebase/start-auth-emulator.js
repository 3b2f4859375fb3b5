#!/usr/bin/env node
// Starts ONLY the Firebase Auth Emulator of the pinned firebase-tools
// (package.json), without the emulator hub, UI, logging or Java emulators:
// ready in a few seconds instead of ~18 s for the whole CLI.
//
//   node start-auth-emulator.js [--host 127.0.0.1] [--port 9099] [--project demo-mymonit]
//
// Environment equivalents: MYMONIT_AUTH_EMULATOR_HOST, MYMONIT_AUTH_EMULATOR_PORT,
// MYMONIT_FIREBASE_PROJECT_ID. When the emulator answers on host:port it
// prints one line to stdout:
//
//   auth emulator ready on 127.0.0.1:9099 project demo-mymonit
//
// and runs until SIGTERM or SIGINT, when it closes the server and exits 0.
// Errors (port in use, firebase-tools missing) exit 1 with a message on
// stderr.
//
// It uses firebase-tools' internal AuthEmulator class
// (firebase-tools/lib/emulator/auth), which is not a public API: after
// upgrading firebase-tools, check that this still starts. The documented
// fallback, with the same endpoints:
//
//   npx firebase emulators:start --only auth --project demo-mymonit
"use strict";

const http = require("http");

function option(name, envName, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[envName] || fallback;
}

const host = option("host", "MYMONIT_AUTH_EMULATOR_HOST", "127.0.0.1");
const port = Number(option("port", "MYMONIT_AUTH_EMULATOR_PORT", "9099"));
const projectId = option("project", "MYMONIT_FIREBASE_PROJECT_ID", "demo-mymonit");

function fail(message) {
  process.stderr.write(`auth emulator: ${message}\n`);
  process.exit(1);
}

if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`bad port ${port}`);

// Answers when the emulator's root endpoint returns 200.
function probe() {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: "/", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

async function main() {
  // A server already on the port would make our listen fail asynchronously
  // while the probe succeeds against it: refuse up front.
  if (await probe()) fail(`something already answers on ${host}:${port}`);

  let AuthEmulator;
  try {
    ({ AuthEmulator } = require("firebase-tools/lib/emulator/auth"));
  } catch (err) {
    fail(`cannot load firebase-tools (run: npm ci in ${__dirname}): ${err.message}`);
  }
  const emulator = new AuthEmulator({ host, port, projectId });

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    try {
      await emulator.stop();
    } catch (err) {
      process.stderr.write(`auth emulator: stopping on ${signal}: ${err.message}\n`);
    }
    process.exit(0);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  // Port conflicts surface as an uncaught 'error' on the http server.
  process.on("uncaughtException", (err) => fail(err.message));

  await emulator.start();
  for (let i = 0; i < 600; i++) {
    if (await probe()) {
      process.stdout.write(`auth emulator ready on ${host}:${port} project ${projectId}\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  fail(`not answering on ${host}:${port} after 30s`);
}

main().catch((err) => fail(err.stack || err.message));
