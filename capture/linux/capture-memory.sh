#!/usr/bin/env bash
# Cordon memory capture for Linux: runs on the suspect instance, as root, through Cordon's SSM
# document (resources/memory-capture.yml), which sets the CORDON_* variables below from its validated
# parameters and appends this file. Read docs/evidence.md first.
#
#   1. Downloads the acquisition tool (AVML) through a short-lived link into memory-backed scratch
#      space and refuses to run it unless its SHA-256 is the pinned one.
#   2. Downloads its upload session (a region, an upload id, and credentials that can write this
#      capture's two objects and nothing else, for at most an hour) the same way.
#   3. Streams the tool's output: nothing is written to the instance's own volumes. The stream is cut
#      into parts of CORDON_PART_SIZE_MIB; each part is buffered in memory, hashed, and uploaded with
#      its SHA-256 (which S3 checks), while the whole stream's SHA-256 is computed alongside.
#   4. Uploads a report (every part's size, SHA-256 and ETag, the image's size and SHA-256). Cordon
#      completes the upload from that report; this script cannot.
#
# Inputs (environment):
#   CORDON_CASE_ID          the case id
#   CORDON_TOOL_URL_B64     base64 of the tool's download link
#   CORDON_TOOL_SHA256      the tool's pinned SHA-256
#   CORDON_SESSION_URL_B64  base64 of the upload session's download link
#   CORDON_COMPRESS         true: AVML's snappy-compressed format; false: LiME
#   CORDON_PART_SIZE_MIB    part size in MiB (5 to 4096)
# Optional, for tests and the emulated SSM agent only (the SSM document never sets them):
#   CORDON_WORK_DIR             a memory-backed directory to use instead of /dev/shm or /run
#   CORDON_ALLOW_LOOPBACK_HTTP  1: also accept plain-HTTP links to 127.0.0.1 (the local emulator)
#
# This file is inlined into a CloudFormation template by the Serverless Framework, which reads a
# dollar sign followed by an opening brace as one of its own variables: write $name, never the braced
# form, and no double opening braces either (SSM's parameter syntax).

set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
umask 077
export LC_ALL=C

log() { printf '%s cordon-capture: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

env_or() { printenv "$1" || printf '%s' "$2"; }

matches() { [[ $1 =~ $2 ]]; }

# Patterns use + rather than large {m,n} bounds, which glibc's regex engine expands into thousands of
# states; lengths are checked on their own (short_enough).
hex64='^[0-9a-f]{64}$'
b64_re='^[A-Za-z0-9+/]+={0,2}$'
https_url='^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/%-]+[?][A-Za-z0-9._~%=&-]+$'
loopback_url='^http://(127[.]0[.]0[.]1|localhost)(:[0-9]{1,5})?/[A-Za-z0-9._~/%-]+[?][A-Za-z0-9._~%=&-]+$'
https_origin='^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$'
loopback_origin='^http://(127[.]0[.]0[.]1|localhost)(:[0-9]{1,5})?$'

short_enough() { [ "$(printf '%s' "$1" | wc -c)" -le "$2" ]; }

allow_loopback() { [ "$(env_or CORDON_ALLOW_LOOPBACK_HTTP 0)" = 1 ]; }

valid_url() {
  short_enough "$1" 8192 && { matches "$1" "$https_url" || { allow_loopback && matches "$1" "$loopback_url"; }; }
}

valid_origin() {
  short_enough "$1" 300 && { matches "$1" "$https_origin" || { allow_loopback && matches "$1" "$loopback_origin"; }; }
}

decode_url() {
  local encoded=$1 url
  short_enough "$encoded" 12000 && matches "$encoded" "$b64_re" || die "a link parameter is not base64"
  url=$(printf '%s' "$encoded" | base64 -d 2>/dev/null) || die "a link parameter does not decode"
  valid_url "$url" || die "a link parameter is not an allowed URL"
  printf '%s' "$url"
}

sha256_hex() { sha256sum "$1" | cut -c1-64; }

# The base64 of a hex digest, as S3's x-amz-checksum-sha256 wants it.
hex_to_b64() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')" | base64 | tr -d '\n'; }

hmac_hex() { printf '%s' "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" | awk '{print $NF}'; }

# Percent-encodes an upload id for the query string (SigV4 keeps only unreserved characters); the
# session check allows no other characters than these three to need it.
uri_encode() { printf '%s' "$1" | sed -e 's/+/%2B/g' -e 's#/#%2F#g' -e 's/=/%3D/g'; }

# The clock S3 sees: the host's clock may be wrong (or set wrong), and SigV4 refuses a skew over 15
# minutes, so the offset to S3's Date header is measured once and applied to every signature.
clock_offset=0
now_epoch() { printf '%s' "$(($(date -u +%s) + clock_offset))"; }

# Signs one S3 request with AWS Signature Version 4 and prints the Authorization header value.
#   sigv4_authorization METHOD PATH QUERY AMZ_DATE PAYLOAD_HEX "name:value" ...
# PATH is already URI-encoded; QUERY is the canonical query string; the headers are lower-case, sorted,
# and include host and every x-amz-* header sent.
sigv4_authorization() {
  local method=$1 path=$2 query=$3 amz_date=$4 payload=$5
  shift 5
  local canonical_headers='' signed_headers='' header name
  for header in "$@"; do
    name=$(printf '%s' "$header" | cut -d: -f1)
    canonical_headers="$canonical_headers$header"$'\n'
    signed_headers="$signed_headers;$name"
  done
  signed_headers=$(printf '%s' "$signed_headers" | cut -c2-)
  local request scope string_to_sign key
  request=$(printf '%s\n%s\n%s\n%s\n%s\n%s' "$method" "$path" "$query" "$canonical_headers" "$signed_headers" "$payload")
  scope="$(printf '%s' "$amz_date" | cut -c1-8)/$s_region/s3/aws4_request"
  string_to_sign=$(printf 'AWS4-HMAC-SHA256\n%s\n%s\n%s' "$amz_date" "$scope" "$(printf '%s' "$request" | sha256sum | cut -c1-64)")
  key=$(printf 'AWS4%s' "$s_secret" | od -An -v -tx1 | tr -d ' \n')
  key=$(hmac_hex "$key" "$(printf '%s' "$amz_date" | cut -c1-8)")
  key=$(hmac_hex "$key" "$s_region")
  key=$(hmac_hex "$key" s3)
  key=$(hmac_hex "$key" aws4_request)
  printf 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' \
    "$s_access_key" "$scope" "$signed_headers" "$(hmac_hex "$key" "$string_to_sign")"
}

# The protocols curl may use for URL: HTTPS only, except plain HTTP to this host's own loopback, which
# is where a local emulator listens; no memory image or session ever crosses a network in clear.
protocols_for() {
  case $1 in
  http://127.0.0.1/* | http://127.0.0.1:[0-9]*/* | http://localhost/* | http://localhost:[0-9]*/*) printf '=https,http' ;;
  *) printf '=https' ;;
  esac
}

# PUTs FILE to PATH?QUERY with its SHA-256 checksum, signed; prints the ETag S3 answered. The checksum
# header lets S3 reject a part that arrives altered; the algorithm header is what Object Lock buckets
# require of every upload. Headers go to curl through a config file, one per line, as signed.
#   s3_put FILE PATH QUERY [extra signed header "name:value", sorting before the x-amz-* ones]
s3_put() {
  local file=$1 path=$2 query=$3 extra=$4
  local payload b64 amz_date host url auth attempt status header
  payload=$(sha256_hex "$file")
  b64=$(hex_to_b64 "$payload")
  host=$(printf '%s' "$s_endpoint" | sed -E 's#^[a-z]+://##')
  url="$s_endpoint$path"
  [ -z "$query" ] || url="$url?$query"
  for attempt in 1 2 3 4; do
    amz_date=$(date -u -d "@$(now_epoch)" +%Y%m%dT%H%M%SZ)
    set -- "host:$host"
    [ -z "$extra" ] || set -- "$@" "$extra"
    set -- "$@" "x-amz-checksum-sha256:$b64" "x-amz-content-sha256:$payload" "x-amz-date:$amz_date" \
      "x-amz-sdk-checksum-algorithm:SHA256" "x-amz-security-token:$s_token"
    auth=$(sigv4_authorization PUT "$path" "$query" "$amz_date" "$payload" "$@")
    shift
    {
      printf 'header = "Authorization: %s"\n' "$auth"
      for header in "$@"; do printf 'header = "%s"\n' "$header"; done
    } >"$work/request.curlrc"
    status=$(curl --silent --show-error --proto "$(protocols_for "$url")" --max-time 900 -o "$work/response" \
      -D "$work/headers" -w '%{http_code}' -X PUT -T "$file" -H 'Expect:' -K "$work/request.curlrc" \
      "$url" </dev/null) || status=000
    if [ "$status" = 200 ]; then
      grep -i '^etag:' "$work/headers" | tail -n 1 | cut -d' ' -f2- | tr -d '\r'
      return 0
    fi
    log "PUT $path returned HTTP $status (attempt $attempt): $(head -c 300 "$work/response" 2>/dev/null | tr -cd '[:print:]')"
    # Only a lost connection, throttling or a server error is worth another try.
    matches "$status" '^(000|429|5[0-9][0-9])$' || break
    sleep $((attempt * 3))
  done
  die "S3 refused $path"
}

# Picks memory-backed scratch space: the image must never touch the instance's own disks.
pick_work_dir() {
  local candidate
  candidate=$(env_or CORDON_WORK_DIR '')
  if [ -n "$candidate" ]; then
    printf '%s' "$candidate"
    return
  fi
  for candidate in /dev/shm /run; do
    if [ -d "$candidate" ] && matches "$(stat -f -c %T "$candidate" 2>/dev/null)" '^(tmpfs|ramfs)$'; then
      printf '%s' "$candidate"
      return
    fi
  done
  die "no memory-backed directory (tmpfs) to work in; refusing to write to the instance's disks"
}

# Reads the upload session: key=value lines, each field checked; nothing in it is ever evaluated.
read_session() {
  local line key value
  while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] || continue
    key=$(printf '%s' "$line" | cut -d= -f1)
    value=$(printf '%s' "$line" | cut -d= -f2-)
    case "$key" in
    version) [ "$value" = 1 ] || die "unknown session version" ;;
    case_id) [ "$value" = "$CORDON_CASE_ID" ] || die "the session is for another case" ;;
    region) matches "$value" '^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$' || die "bad region"; s_region=$value ;;
    endpoint) valid_origin "$value" || die "bad endpoint"; s_endpoint=$value ;;
    image_path) short_enough "$value" 1024 && matches "$value" '^/[A-Za-z0-9._~/%-]+$' || die "bad image path"; s_image_path=$value ;;
    report_path) short_enough "$value" 1024 && matches "$value" '^/[A-Za-z0-9._~/%-]+$' || die "bad report path"; s_report_path=$value ;;
    upload_id) short_enough "$value" 1024 && matches "$value" '^[A-Za-z0-9._~+/=-]+$' || die "bad upload id"; s_upload_id=$value ;;
    part_size_mib) [ "$value" = "$CORDON_PART_SIZE_MIB" ] || die "the session plans another part size" ;;
    max_parts) matches "$value" '^[1-9][0-9]{0,4}$' && [ "$value" -le 10000 ] || die "bad part count"; s_max_parts=$value ;;
    access_key_id) short_enough "$value" 128 && matches "$value" '^[A-Z0-9]{16,}$' || die "bad access key id"; s_access_key=$value ;;
    secret_access_key) short_enough "$value" 128 && matches "$value" '^[A-Za-z0-9+/=]{16,}$' || die "bad secret key"; s_secret=$value ;;
    session_token) short_enough "$value" 4096 && matches "$value" '^[A-Za-z0-9+/=]{16,}$' || die "bad session token"; s_token=$value ;;
    expires_at) matches "$value" '^[0-9T:.Z-]{20,30}$' || die "bad expiry"; s_expires=$value ;;
    *) die "unknown session field" ;;
    esac
  done <"$work/session.env"
  [ -n "$s_region" ] && [ -n "$s_endpoint" ] && [ -n "$s_image_path" ] && [ -n "$s_report_path" ] &&
    [ -n "$s_upload_id" ] && [ -n "$s_max_parts" ] && [ -n "$s_access_key" ] && [ -n "$s_secret" ] &&
    [ -n "$s_token" ] && [ -n "$s_expires" ] || die "the upload session is incomplete"
  s_upload_query_id=$(uri_encode "$s_upload_id")
}

# Reads the image from standard input a part at a time and uploads each part.
upload_parts() {
  local n=0 total=0 size etag hex b64
  : >"$work/parts"
  while true; do
    dd bs=1048576 count="$CORDON_PART_SIZE_MIB" iflag=fullblock status=none of="$work/part" ||
      die "reading the image stream failed"
    size=$(stat -c %s "$work/part")
    [ "$size" -gt 0 ] || break
    n=$((n + 1))
    [ "$n" -le "$s_max_parts" ] || die "the image is larger than the $s_max_parts parts planned for it"
    hex=$(sha256_hex "$work/part")
    b64=$(hex_to_b64 "$hex")
    etag=$(s3_put "$work/part" "$s_image_path" "partNumber=$n&uploadId=$s_upload_query_id" '')
    short_enough "$etag" 130 && matches "$etag" '^"?[A-Za-z0-9+/=_-]+"?$' || die "S3 returned no usable ETag for part $n"
    printf '%s %s %s %s %s\n' "$n" "$size" "$hex" "$b64" "$etag" >>"$work/parts"
    total=$((total + size))
    [ $((n % 50)) -ne 0 ] || log "uploaded $n parts ($total bytes)"
    [ "$size" -eq "$part_bytes" ] || break
  done
  [ "$n" -gt 0 ] || die "the acquisition tool produced no data"
}

write_report() {
  local bytes=$1 image_sha=$2 format=$3 started=$4 finished=$5
  local n size hex b64 etag sep='' kernel machine
  kernel=$(uname -r | tr -cd 'A-Za-z0-9._+~-' | cut -c1-64)
  machine=$(uname -m | tr -cd 'A-Za-z0-9_-' | cut -c1-32)
  {
    printf '{"schema":"cordon.memory-report/1","caseId":"%s",' "$CORDON_CASE_ID"
    printf '"tool":{"name":"avml","sha256":"%s"},' "$CORDON_TOOL_SHA256"
    printf '"image":{"bytes":%s,"sha256":"%s","format":"%s"},' "$bytes" "$image_sha" "$format"
    printf '"partSize":%s,"parts":[' "$part_bytes"
    while read -r n size hex b64 etag; do
      etag=$(printf '%s' "$etag" | tr -d '"')
      printf '%s{"partNumber":%s,"bytes":%s,"sha256":"%s","checksumSha256":"%s","etag":"%s"}' \
        "$sep" "$n" "$size" "$hex" "$b64" "$etag"
      sep=','
    done <"$work/parts"
    printf '],"host":{"kernel":"%s","machine":"%s","clockSkewSeconds":%s},' "$kernel" "$machine" "$clock_offset"
    printf '"startedAt":"%s","finishedAt":"%s"}\n' "$started" "$finished"
  } >"$work/report.json"
}

cleanup() {
  # The tool, the credentials and any buffered part live only in this directory.
  if [ -n "$work" ] && [ -d "$work" ]; then rm -rf -- "$work"; fi
}

main() {
  for tool_needed in curl openssl sha256sum base64 dd od stat mkfifo tee df grep awk sed; do
    command -v "$tool_needed" >/dev/null || die "$tool_needed is not installed"
  done
  matches "$(printenv CORDON_CASE_ID || true)" '^[0-9]{8}T[0-9]{6}Z-i-[0-9a-f]{8,17}-[0-9a-f]{4}$' || die "bad case id"
  matches "$(printenv CORDON_TOOL_SHA256 || true)" "$hex64" || die "bad tool hash"
  matches "$(printenv CORDON_COMPRESS || true)" '^(true|false)$' || die "bad compression flag"
  matches "$(printenv CORDON_PART_SIZE_MIB || true)" '^[1-9][0-9]{0,3}$' || die "bad part size"
  [ "$CORDON_PART_SIZE_MIB" -ge 5 ] && [ "$CORDON_PART_SIZE_MIB" -le 4096 ] || die "part size out of range"
  local tool_url session_url
  tool_url=$(decode_url "$(printenv CORDON_TOOL_URL_B64 || true)")
  session_url=$(decode_url "$(printenv CORDON_SESSION_URL_B64 || true)")

  work="$(pick_work_dir)/cordon-$CORDON_CASE_ID-$$"
  trap cleanup EXIT
  mkdir -m 0700 "$work"
  matches "$(stat -f -c %T "$work")" '^(tmpfs|ramfs)$' || [ -n "$(env_or CORDON_WORK_DIR '')" ] ||
    die "the scratch directory is not memory-backed"
  part_bytes=$((CORDON_PART_SIZE_MIB * 1048576))
  local free_kib
  free_kib=$(df -Pk "$work" | awk 'NR==2 {print $4}')
  [ "$free_kib" -gt $((CORDON_PART_SIZE_MIB * 1024 + 65536)) ] ||
    die "not enough memory-backed space for one $CORDON_PART_SIZE_MIB MiB part"

  log "case $CORDON_CASE_ID: fetching the acquisition tool"
  curl --fail --silent --show-error --proto "$(protocols_for "$tool_url")" --max-time 300 -o "$work/tool" "$tool_url" </dev/null ||
    die "the tool download failed"
  [ "$(sha256_hex "$work/tool")" = "$CORDON_TOOL_SHA256" ] ||
    die "the tool's SHA-256 is not the pinned one; it was not run"
  chmod 0700 "$work/tool"

  curl --fail --silent --show-error --proto "$(protocols_for "$session_url")" --max-time 120 -D "$work/session.headers" \
    -o "$work/session.env" "$session_url" </dev/null || die "the upload session download failed"
  local server_date server_epoch
  server_date=$(grep -i '^date:' "$work/session.headers" | tail -n 1 | cut -d' ' -f2- | tr -d '\r')
  if [ -n "$server_date" ] && server_epoch=$(date -u -d "$server_date" +%s 2>/dev/null); then
    clock_offset=$((server_epoch - $(date -u +%s)))
  fi
  [ "$clock_offset" -gt -60 ] && [ "$clock_offset" -lt 60 ] || log "host clock is $clock_offset s off S3's; correcting"
  read_session

  local started format
  started=$(date -u -d "@$(now_epoch)" +%Y-%m-%dT%H:%M:%SZ)
  format=lime
  [ "$CORDON_COMPRESS" = false ] || format=avml-snappy
  log "acquiring memory ($format) in parts of $CORDON_PART_SIZE_MIB MiB"
  mkfifo -m 0600 "$work/hash.fifo"
  sha256sum <"$work/hash.fifo" | cut -c1-64 >"$work/image.sha256" &
  local hasher=$!
  set +e
  {
    if [ "$CORDON_COMPRESS" = true ]; then
      "$work/tool" --compress /dev/stdout 2>"$work/tool.log"
    else
      "$work/tool" /dev/stdout 2>"$work/tool.log"
    fi
    printf '%s' "$?" >"$work/tool.status"
  } | tee "$work/hash.fifo" | upload_parts
  local upload_status=$?
  set -e
  wait "$hasher" || die "hashing the image stream failed"
  [ "$upload_status" -eq 0 ] || die "the upload failed"
  [ "$(cat "$work/tool.status")" = 0 ] ||
    die "the acquisition tool failed on $(uname -m): $(tail -c 300 "$work/tool.log" | tr -cd '[:print:]')"

  local bytes image_sha
  bytes=$(awk '{sum += $2} END {printf "%d", sum}' "$work/parts")
  image_sha=$(cat "$work/image.sha256")
  matches "$image_sha" "$hex64" || die "the image hash is missing"
  write_report "$bytes" "$image_sha" "$format" "$started" "$(date -u -d "@$(now_epoch)" +%Y-%m-%dT%H:%M:%SZ)"
  s3_put "$work/report.json" "$s_report_path" '' 'if-none-match:*' >/dev/null
  log "done: $(wc -l <"$work/parts") parts, $bytes bytes, SHA-256 $image_sha"
}

work=''
part_bytes=0
s_region='' s_endpoint='' s_image_path='' s_report_path='' s_upload_id='' s_upload_query_id=''
s_max_parts='' s_access_key='' s_secret='' s_token='' s_expires=''
if [ "$(env_or CORDON_CAPTURE_LIBRARY 0)" != 1 ]; then main; fi
