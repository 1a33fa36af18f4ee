"""Constants shared by the engines and the layers above (no imports: engines load early)."""

SCHEME_TRANSFER = 0  # sha256(agentId + timestamp + nonce + body)
SCHEME_PIPE = 1  # sha256(agentId "|" timestamp "|" nonce "|" wireString)

# Statuses of KeyEngine.open / open_batch, checked in this order.
OPEN_OK = 0
OPEN_BAD_TIMESTAMP = 5  # x-timestamp is not 1-16 decimal digits
OPEN_BAD_NONCE = 6  # x-nonce is not 32 lowercase hex characters
OPEN_NOT_CANONICAL = 1  # body is not exactly {"cipherText":"<chars other than quote/backslash>"}
OPEN_BAD_SIGNATURE = 2  # computed signature differs from the given one (constant-time compare)
OPEN_BAD_WIRE = 3  # the wire string is not iv(16)+tag(24)+ciphertext(>0) strict padded base64
OPEN_BAD_TAG = 4  # GCM authentication failed; no plaintext is released

BODY_PREFIX = b'{"cipherText":"'
BODY_SUFFIX = b'"}'

# The API's paths (the client calls them, the sandbox serves them).
AUTH_PATH = "/v2/auth"
CASHOUT_PATH = "/v2/members/cashout"
QUERY_PATH = "/v2/members/check/transactions"
