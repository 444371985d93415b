#pragma once

// Metric and label names that cross a process boundary: sluice-router's per-revision series, read
// by canary analysis (scraped directly or through PromQL), and sluice-server's in-flight gauge,
// read by the concurrency autoscaler and the HPA. The exporters and the readers both use these.

namespace sluice::api {

// sluice-router, per revision.
inline constexpr char kRouterRequestsTotal[] = "sluice_router_requests_total";
inline constexpr char kRouterRequestDurationSeconds[] = "sluice_router_request_duration_seconds";
inline constexpr char kRouterRequestDurationBucket[] =
    "sluice_router_request_duration_seconds_bucket";
// Label on the router's series: the revision name.
inline constexpr char kRevisionLabel[] = "revision";
// Label on the router's request counter: "2xx", "3xx", "4xx", "5xx" or "error" (no answer).
inline constexpr char kCodeLabel[] = "code";
// The values of kCodeLabel that canary analysis counts as errors.
inline constexpr char kCode5xx[] = "5xx";
inline constexpr char kCodeError[] = "error";
inline constexpr char kBucketBoundLabel[] = "le";
// sluice-router's canary guard (lib/api/canary_protection.h): 1 while the guard keeps new requests
// away from the revision, else 0; the analysis takes 1 as a failed check.
inline constexpr char kRouterGuardTripped[] = "sluice_router_guard_tripped";
// Requests the guard sent to the stable revision instead of the revision.
inline constexpr char kRouterGuardDivertedTotal[] = "sluice_router_guard_diverted_total";
// Requests a revision failed that went once more to another revision, by revision (the one that
// failed), "to" (the revision retried on) and outcome: the retry's class (2xx..5xx, error) or
// "denied" (over the retry budget, not sent) or "expired" (no time left, not sent).
inline constexpr char kRouterRetriesTotal[] = "sluice_router_retries_total";
inline constexpr char kRetryTargetLabel[] = "to";
inline constexpr char kRetryOutcomeLabel[] = "outcome";
inline constexpr char kRetryDenied[] = "denied";
inline constexpr char kRetryExpired[] = "expired";

// sluice-server.
inline constexpr char kServerInflightRequests[] = "sluice_server_inflight_requests";
// Start-up of a model (gauges, labelled model and version): the fetch (0 when a file from an
// earlier start in --model-dir was reused), the bytes of the model file, and parse + build +
// warm-up. Dashboards and the benchmarks read them.
inline constexpr char kServerModelFetchSeconds[] = "sluice_server_model_fetch_seconds";
inline constexpr char kServerModelLoadSeconds[] = "sluice_server_model_load_seconds";
inline constexpr char kServerModelBytes[] = "sluice_server_model_bytes";

// Reloads of the serving certificate (--tls-cert-file), by result: "reloaded" when a changed
// certificate is served, "error" when it did not load and the previous one stays.
inline constexpr char kServerTlsReloadsTotal[] = "sluice_server_tls_reloads_total";
inline constexpr char kRouterTlsReloadsTotal[] = "sluice_router_tls_reloads_total";
inline constexpr char kTlsReloadResultLabel[] = "result";

}  // namespace sluice::api
