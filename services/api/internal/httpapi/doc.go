// Package httpapi serves the MyMONIT REST API under /v1: the caller's own
// user (/v1/me), users, experiments and memberships, and the OpenAPI 3
// description of all of it (/v1/openapi.json, embedded from openapi.yaml).
//
// # Authentication and authorization
//
// Every /v1 route except /v1/openapi.json needs "Authorization: Bearer
// <Firebase ID token>". The token is checked by auth.Verifier: a missing,
// malformed, expired or revoked token, or a disabled Firebase account, is
// 401; an identity provider that cannot be reached is 503 (never 401). The
// token's uid must then belong to a live MyMONIT user (storage), else 403:
// an unknown uid and an erased user are both "forbidden". The user's role
// decides the rest:
//
//   - admin: everything.
//   - auditor: reads all experiments, and the data (measures, sensors, live)
//     of those it is a member of (403 on the others); no users, no
//     memberships, no changes.
//   - scientist: reads only the experiments it is a member of.
//
// A role that may not use a route gets 403 before anything else is looked
// at (parameters, bodies, objects). For an experiment a scientist is not a
// member of, the answer is 404, exactly as for an experiment that does not
// exist, so that slugs of other teams' experiments cannot be discovered
// (OWASP API1: no object-level leak).
//
// # Errors
//
// Every error is an RFC 9457 application/problem+json document with a
// stable type URI (ProblemBase + unauthenticated, forbidden, not-found,
// validation, conflict, unsupported-media-type, too-large,
// method-not-allowed, not-implemented, unavailable, internal), the HTTP
// status, a title, a human detail, the request id, and for validation
// errors "invalid_params": [{"name", "reason"}] naming each bad parameter
// ("body.email", "query.limit", "path.id"). Details never carry SQL, stack
// traces or tokens. Errors are turned into problems in one place (the
// error mapper), which also logs server-side failures once.
//
// Request bodies are JSON (Content-Type application/json), at most 1 MiB,
// one value, and unknown fields are rejected.
//
// # Audit
//
// Every admin change (create, update, erase, delete, membership add and
// remove) and every data read (measures.read, sensors.read, and live
// streams: measures.live.open when one starts, measures.live when it
// ends), successful or not, is logged as an ECS audit event
// (logging.Audit): event.action, event.outcome, user.id of the actor,
// the target (mymonit.target.user_id, mymonit.experiment), and
// http.request.id. No names, e-mail addresses or tokens are logged.
//
// # Request ids
//
// A request's X-Request-ID, when it is 1 to 64 characters of
// [A-Za-z0-9._-], is kept; otherwise one is generated. It is echoed in the
// response header, put in problems and in every log line of the request.
package httpapi
