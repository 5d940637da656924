"""The provisioning step: a bash script that puts the pool's models on the machine.

Pure: :func:`compose_provisioning` takes the pool template and returns what the create
request carries (:class:`Provisioning`): the ``onstart`` text and environment variables.
The controller adds the bearer tokens read from the Secrets, under the names in
:attr:`Provisioning.token_env`; the script text never holds a token.

Delivery. Vast.ai caps ``onstart`` (plus ``args``) at 4096 characters and each environment
value at 256 (contracts/vastai-api.md §5.2), while the script is several kilobytes: the
script travels base64-encoded in ``WARMPOOL_PS_000``, ``WARMPOOL_PS_001``, ... and ``onstart``
starts with one bootstrap line (:data:`BOOTSTRAP`) that decodes and runs it, followed by
the user's own ``onstart``, which runs whatever the downloads gave (so a ComfyUI that the
user's script starts comes up and the operator can read the outcome through it).

What the script does (bash and curl, nothing else beyond coreutils):
- models go to ``$WARMPOOL_MODELS_DIR`` (default ``$WORKSPACE/ComfyUI/models``, the layout
  of Vast.ai's ComfyUI image; ``WORKSPACE`` defaults to ``/workspace``);
- at most ``WARMPOOL_PARALLEL`` downloads at once, each into ``.<file>.part`` next to the
  target (ComfyUI lists only known model extensions and never a hidden part file),
  resuming a part file left by an earlier boot (``curl -C -``), then verified (size and
  sha256 when declared) and renamed into place; a file already present and verified is
  kept;
- redirects are followed with ``--location``: curl sends a custom ``Authorization`` header
  only to the host of the original URL (it drops it on a redirect to another host or port
  unless ``--location-trusted``, which is not used), so Hugging Face's and Civitai's
  signed CDN redirects never see the token. The header goes to curl through ``-K -``
  (stdin), never on its command line;
- no byte for ``WARMPOOL_STALL_SECONDS`` → ``ModelDownloadStalled``
  (``--speed-limit 1 --speed-time``); a write error → ``DiskFull``; 401/403 →
  ``ModelAuthFailed``; 404 → ``ModelNotFound``; wrong size or sha256 →
  ``ModelChecksumMismatch``; anything else → ``ModelDownloadFailed``.

Progress channel: the script keeps a small JSON file (:data:`STATUS_PATH` under ComfyUI's
output directory, rewritten atomically every ``WARMPOOL_REPORT_SECONDS``) that the operator
reads with ``GET /view?type=output&subfolder=warmpool&filename=models.json`` through the
machine's authenticated ComfyUI port: the same Bearer-checked channel it already probes, a
fresh answer on every poll, and no call to Vast.ai (whose instance logs are an asynchronous
S3 snapshot, stale during long downloads, and whose ``status_msg`` the container cannot
write). Its shape is :class:`warmpool.crds.gpuinstance.ModelProgress` per model, plus
``done``. It holds names, byte counts and reasons; never a URL (signed URLs are secrets
too) nor a token.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from dataclasses import dataclass, field

from warmpool.crds.gpupool import ModelSpec, SecretKeyRef, TemplateSpec

#: Environment variables carrying the base64 script, 000, 001, ... (sorted by name).
PAYLOAD_PREFIX = "WARMPOOL_PS_"
#: Each payload value stays under Vast.ai's 256-character limit per environment value.
PAYLOAD_CHUNK = 252
#: The first line of onstart: decode the payload and run it (bash process substitution).
BOOTSTRAP = (
    f'bash <(for v in ${{!{PAYLOAD_PREFIX}*}};do printf %s "${{!v}}";done|base64 -d)'
    " # warmpool models"
)
#: Where the status file lands, relative to ComfyUI's output directory.
STATUS_SUBFOLDER = "warmpool"
STATUS_FILE = "models.json"
STATUS_PATH = f"{STATUS_SUBFOLDER}/{STATUS_FILE}"
#: Vast.ai's limit on onstart + args (contracts/vastai-api.md §5.2).
MAX_ONSTART = 4096
#: Room for the payload in Vast.ai's 32768 characters of environment (the rest is the user's).
MAX_PAYLOAD = 24576
#: Prefix of the environment variables that carry bearer tokens (one per Secret key).
TOKEN_PREFIX = "WARMPOOL_MODEL_TOKEN_"

_SCRIPT = r"""#!/bin/bash
# warmpool provisioning step (composed by the operator; runs before the user's onstart).
set -u
W="${WORKSPACE:-/workspace}"
M="${WARMPOOL_MODELS_DIR:-$W/ComfyUI/models}"
S="${WARMPOOL_STATUS_FILE:-$W/ComfyUI/output/__STATUS__}"
P=${WARMPOOL_PARALLEL:-__PARALLEL__}
STALL=${WARMPOOL_STALL_SECONDS:-__STALL__}
EVERY=${WARMPOOL_REPORT_SECONDS:-__EVERY__}
T="$(mktemp -d "${TMPDIR:-/tmp}/warmpool.XXXXXX")"
mkdir -p "$(dirname "$S")" "$M"
say() { echo "warmpool: $*" >&2; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
state() { printf '%s\n' "$2" >"$T/$1.state.tmp" && mv -f "$T/$1.state.tmp" "$T/$1.state"; }
verify() {  # file size sha -> 0 when it matches what is declared
  local f="$1" size="$2" sha="$3"
  [ -n "$size" ] && [ "$(size_of "$f")" != "$size" ] && return 1
  if [ -n "$sha" ]; then
    [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sha" ] || return 1
  fi
  return 0
}
fetch() {  # i folder file url sha size tokenvar
  local i="$1" dir="$M/$2" file="$3" url="$4" sha="$5" size="$6" tok="$7"
  local dest="$dir/$file" part="$dir/.$file.part" code rc try
  mkdir -p "$dir" 2>/dev/null || { state "$i" "Failed DiskFull 0"; return; }
  if [ -f "$dest" ]; then
    if verify "$dest" "$size" "$sha"; then state "$i" "Present - 0"; return; fi
    say "$2/$file is on disk but does not match; downloading it again"
    rm -f "$dest"
  fi
  if [ -z "$url" ]; then state "$i" "Failed ModelNotFound 0"; return; fi
  for try in 1 2; do
    if [ -n "$size" ] && [ "$(size_of "$part")" -gt "$size" ]; then rm -f "$part"; fi
    state "$i" "Downloading - 0"
    if [ -n "$size" ] && [ -f "$part" ] && [ "$(size_of "$part")" = "$size" ]; then
      code=206; rc=0
    else
      code=$(
        { if [ -n "$tok" ] && [ -n "${!tok:-}" ]; then
            printf 'header = "Authorization: Bearer %s"\n' "${!tok}"
          fi; } | curl -K - --location --silent --show-error --fail \
          --proto '=http,https' --proto-redir '=http,https' --max-redirs 10 \
          --connect-timeout 30 --speed-limit 1 --speed-time "$STALL" \
          --continue-at - --dump-header "$T/$i.headers" --output "$part" \
          --write-out '%{http_code}' "$url" 2>"$T/$i.err"
      ); rc=$?
    fi
    case "$rc" in
      0) ;;
      23) state "$i" "Failed DiskFull 0"; return ;;
      28) state "$i" "Failed ModelDownloadStalled 0"; return ;;
      33|36) rm -f "$part"; continue ;;  # the server cannot resume: start again
      22)
        case "$code" in
          401|403) state "$i" "Failed ModelAuthFailed $code"; return ;;
          404|410) state "$i" "Failed ModelNotFound $code"; return ;;
          416) rm -f "$part"; continue ;;
          *) state "$i" "Failed ModelDownloadFailed $code"; return ;;
        esac ;;
      *) say "$2/$file: curl exit $rc: $(head -c 300 "$T/$i.err")"
         state "$i" "Failed ModelDownloadFailed 0"; return ;;
    esac
    if ! verify "$part" "$size" "$sha"; then
      rm -f "$part"; state "$i" "Failed ModelChecksumMismatch 0"; return
    fi
    if mv -f "$part" "$dest"; then state "$i" "Present - 0"; else state "$i" "Failed DiskFull 0"; fi
    return
  done
  state "$i" "Failed ModelDownloadFailed 416"
}
total_of() {  # i size -> expected bytes (declared, else from the answer's headers)
  local h="$T/$1.headers" range length
  if [ -n "$2" ]; then echo "$2"; return; fi
  [ -f "$h" ] || { echo null; return; }
  range=$(tr -d '\r' <"$h" | grep -i '^content-range:' | tail -n1 | sed 's#.*/##')
  if [ -n "$range" ] && [ "$range" != "*" ]; then echo "$range"; return; fi
  length=$(tr -d '\r' <"$h" | grep -i '^content-length:' | tail -n1 | sed 's#.*: *##')
  echo "${length:-null}"
}
report() {  # done -> rewrite the status file atomically
  local out="$S.tmp" sep="" i phase reason code done_bytes total n=0
  printf '{"version":1,"done":%s,"models":[' "$1" >"$out"
  for i in "${!F[@]}"; do
    read -r phase reason code 2>/dev/null <"$T/$i.state" || { phase=Pending; reason=-; code=0; }
    [ "$reason" = "-" ] && reason=""
    if [ "$phase" = Present ]; then done_bytes=$(size_of "${DEST[$i]}")
    else done_bytes=$(size_of "${PART[$i]}"); fi
    total=$(total_of "$i" "${SIZE[$i]}")
    [ "$phase" = Present ] && [ "$total" = null ] && total=$done_bytes
    [ "$code" = 0 ] && code=null
    printf '%s%s,"phase":"%s","bytesDone":%s,"bytesTotal":%s,"reason":"%s","httpStatus":%s}' \
      "$sep" "${JSON[$i]}" "$phase" "$done_bytes" "$total" "$reason" "$code" >>"$out"
    sep=","; n=$((n + 1))
  done
  printf ']}\n' >>"$out"
  mv -f "$out" "$S"
}
declare -a F DEST PART SIZE JSON
__MODELS__
report false
( while sleep "$EVERY"; do report false; done ) &
REPORTER=$!
disown "$REPORTER"  # out of the job table: wait -n below counts downloads only
running=0
for i in "${!F[@]}"; do
  if [ "$running" -ge "$P" ]; then wait -n; running=$((running - 1)); fi
  fetch "$i" "${FOLDER[$i]}" "${F[$i]}" "${URL[$i]}" "${SHA[$i]}" "${SIZE[$i]}" "${TOK[$i]}" &
  running=$((running + 1))
done
wait
kill "$REPORTER" 2>/dev/null
report true
failed=0
for i in "${!F[@]}"; do
  read -r phase reason code <"$T/$i.state"
  [ "$phase" = Present ] || { say "${FOLDER[$i]}/${F[$i]}: $reason $code"; failed=1; }
done
rm -rf "$T"
exit "$failed"
"""


@dataclass(frozen=True)
class Provisioning:
    """What the create request carries for the models."""

    onstart: str
    #: Environment variables to send (payload chunks and settings; no token values).
    env: dict[str, str]
    #: Environment variable name → the Secret key whose value it must carry.
    token_env: dict[str, SecretKeyRef] = field(default_factory=dict)


def downloadable(models: list[ModelSpec]) -> list[ModelSpec]:
    """The models the provisioning step downloads: those with a URL."""
    return [m for m in models if m.url]


def token_variable(ref: SecretKeyRef) -> str:
    """The environment variable that carries one Secret key's token (stable per ref)."""
    clean = re.sub(r"[^A-Za-z0-9]", "_", f"{ref.name}_{ref.key}").upper()
    return f"{TOKEN_PREFIX}{clean}"


def compose_script(
    models: list[ModelSpec],
    *,
    stall_seconds: int = 120,
    parallel: int = 3,
    report_seconds: int = 2,
) -> str:
    """The provisioning script for these models (bash)."""
    lines = ["declare -a FOLDER URL SHA TOK"]
    for i, m in enumerate(models):
        frag = json.dumps({"folder": m.folder, "file": m.file}, separators=(",", ":"))[:-1]
        tok = token_variable(m.token_secret) if m.token_secret else ""
        values = {
            "FOLDER": m.folder,
            "F": m.file,
            "URL": m.url or "",
            "SHA": m.sha256 or "",
            "SIZE": str(m.size_bytes) if m.size_bytes else "",
            "TOK": tok,
            "JSON": frag,
        }
        lines.append(" ".join(f"{k}[{i}]={shlex.quote(v)}" for k, v in values.items()))
        lines.append(f'DEST[{i}]="$M/"{shlex.quote(m.folder + "/" + m.file)}')
        lines.append(f'PART[{i}]="$M/"{shlex.quote(m.folder + "/." + m.file + ".part")}')
    return (
        _SCRIPT.replace("__MODELS__", "\n".join(lines))
        .replace("__STATUS__", STATUS_PATH)
        .replace("__PARALLEL__", str(max(1, parallel)))
        .replace("__STALL__", str(max(1, stall_seconds)))
        .replace("__EVERY__", str(max(1, report_seconds)))
    )


def payload_env(script: str) -> dict[str, str]:
    """The script as base64 chunks in ``WARMPOOL_PS_000``, ``_001``, ... (sorted order)."""
    encoded = base64.b64encode(script.encode()).decode()
    chunks = [encoded[i : i + PAYLOAD_CHUNK] for i in range(0, len(encoded), PAYLOAD_CHUNK)]
    return {f"{PAYLOAD_PREFIX}{n:03d}": chunk for n, chunk in enumerate(chunks)}


def compose_provisioning(
    template: TemplateSpec, *, stall_seconds: int = 120, parallel: int = 3
) -> Provisioning:
    """The onstart and environment of a rental of this template.

    Only models with a ``url`` are downloaded (the others must come with the image; the
    readiness probe checks them). Without any, the user's onstart is sent unchanged and
    nothing is added. Raises ValueError when the user's onstart leaves no room for the
    bootstrap line (the CRD's 4000 characters always leave it) or the payload passes
    Vast.ai's 32 KB of environment.
    """
    user = template.onstart or ""
    models = downloadable(template.models)
    if not models:
        return Provisioning(onstart=user, env={})
    onstart = f"{BOOTSTRAP}\n{user}" if user else BOOTSTRAP
    if len(onstart) > MAX_ONSTART:
        raise ValueError(
            f"template.onstart is too long for the models' bootstrap line: at most "
            f"{MAX_ONSTART - len(BOOTSTRAP) - 1} characters with models"
        )
    script = compose_script(models, stall_seconds=stall_seconds, parallel=parallel)
    env = payload_env(script)
    if sum(len(k) + len(v) for k, v in env.items()) > MAX_PAYLOAD:
        raise ValueError("template.models: too many or too long URLs for one rental's environment")
    refs = {
        token_variable(m.token_secret): m.token_secret for m in template.models if m.token_secret
    }
    return Provisioning(onstart=onstart, env=env, token_env=refs)
