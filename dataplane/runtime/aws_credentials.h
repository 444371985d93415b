#pragma once

// AWS credentials for s3:// model URIs, from the standard environment, in the order the AWS SDKs
// use for these sources:
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//   2. web identity (EKS IRSA, or any OIDC token projected into the pod):
//      AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME), exchanged through STS
//      AssumeRoleWithWebIdentity at https://sts.<region>.amazonaws.com, or AWS_ENDPOINT_URL_STS.
// Nothing set is an error (kUnauthorized) that says so: an anonymous request would only come back
// as a confusing 403.
//
// Contract: thread-safe; web identity credentials are cached per (role, token file, endpoint)
// until five minutes before they expire, so a model and its reference cost one STS call. One
// attempt, no retries (the fetch above retries). Secrets (secret key, session token, the web
// identity token) never appear in an error message.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "dataplane/runtime/sigv4.h"
#include "lib/base/status.h"

namespace sluice::dataplane {

using GetEnvFn = std::function<const char*(const char*)>;

// The process environment (std::getenv).
GetEnvFn ProcessEnv();

struct AwsCredentialOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{30'000};
  std::string ca_file;  // for the STS endpoint; empty: the system store
  std::string region;   // for the regional STS endpoint; empty: AwsRegionFromEnv
};

Result<AwsCredentials> ResolveAwsCredentials(const GetEnvFn& getenv,
                                             const AwsCredentialOptions& options);

// AWS_REGION, else AWS_DEFAULT_REGION, else "us-east-1".
std::string AwsRegionFromEnv(const GetEnvFn& getenv);

// The text of the first <tag>...</tag> in `xml` (no entity decoding beyond &amp; &lt; &gt;
// &quot; &apos;), or "" when absent. Enough for the flat answers of S3 and STS.
std::string XmlElementText(std::string_view xml, std::string_view tag);

// Drops the web identity cache (tests).
void ClearAwsCredentialCache();

}  // namespace sluice::dataplane
