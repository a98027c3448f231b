#!/usr/bin/env bash
# Install everything the local secondread stack needs, idempotently.
#
#   bash deploy/local/install.sh
#
# Steps (each skipped when already satisfied, one progress line each):
#   1. Debian packages: orthanc, orthanc-dicomweb, dcmtk, dicom3tools, kcat, poppler-utils,
#      fonts-dejavu-core (the report PDF), PostgreSQL 15,
#      a JRE (only if `java` is missing), maven (only if `mvn` is missing), unzip
#   2. Apache Kafka jars (Maven), into $CACHE/kafka-<version>/libs; the HAPI FHIR validator jars
#      (Maven), into $CACHE/hapi-fhir-<version>/libs
#   3. versitygw, mailpit, jaeger and toxiproxy (make chaos) (Go module proxy), into $CACHE/bin
#   4. Keycloak (Maven Central zip, needs a Java 21+ JDK), into $CACHE/keycloak-<version>
#   5. uv (PyPI) into $CACHE/uv-venv, then the project's .venv synced to requirements.lock
#      (bytecode compiled at install, so no start pays for it)
#   6. the pages' front-end packages (npm, web/package-lock.json) into web/node_modules
#
# Downloads and builds are cached outside the repo in ${SECONDREAD_CACHE_DIR:-$HOME/.cache/secondread}.
set -euo pipefail

KAFKA_VERSION=4.3.1
KEYCLOAK_VERSION=26.7.3
HAPI_FHIR_VERSION=8.8.0
VERSITYGW_VERSION=v1.7.0
MAILPIT_VERSION=v1.33.1
TOXIPROXY_VERSION=v2.12.0
JAEGER_VERSION=v1.76.0
UV_VERSION=0.13.9
PYTHON_VERSION=3.11

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${SECONDREAD_CACHE_DIR:-$HOME/.cache/secondread}"
mkdir -p "$CACHE/bin" "$CACHE/build"

T0=$(date +%s)
step_t0=0
step() { step_t0=$(date +%s); printf '==> %-44s ' "$1"; }
done_() { printf '%s (%ss)\n' "$1" "$(( $(date +%s) - step_t0 ))"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install Debian packages"
  SUDO="sudo"
fi

# --------------------------------------------------------------------------------------------
# 1. Debian packages
# --------------------------------------------------------------------------------------------
step "apt packages"
missing=()
for pkg in orthanc orthanc-dicomweb dcmtk dicom3tools kcat poppler-utils fonts-dejavu-core; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
command -v npm >/dev/null || missing+=(nodejs npm)
command -v chromium >/dev/null || missing+=(chromium)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v unzip >/dev/null || missing+=(unzip)
if [ ${#missing[@]} -eq 0 ]; then
  done_ "already installed"
else
  printf 'installing %s ... ' "${missing[*]}"
  log="$CACHE/apt-install.log"
  if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q \
         && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
              "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get failed (full log: $log)"
  fi
  done_ "ok"
fi

# The Debian orthanc package ships a system service (/etc/orthanc) on our archive ports 8042/4242.
# We run our own Orthanc processes, so make sure the system one is neither running nor enabled.
step "system Orthanc service off"
if pgrep -f '^/usr/sbin/Orthanc /etc/orthanc' >/dev/null 2>&1; then
  $SUDO service orthanc stop >/dev/null 2>&1 || $SUDO pkill -TERM -f '^/usr/sbin/Orthanc /etc/orthanc' || true
  command -v update-rc.d >/dev/null && { $SUDO update-rc.d orthanc disable >/dev/null 2>&1 || true; }
  done_ "stopped the system service"
else
  done_ "not running"
fi

# --------------------------------------------------------------------------------------------
# 2. Kafka broker jars
# --------------------------------------------------------------------------------------------
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
kafka_ok() {
  [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] && [ -f "$KAFKA_LIBS/.complete" ]
}
step "kafka $KAFKA_VERSION jars"
if kafka_ok; then
  done_ "cached"
else
  log="$CACHE/kafka-mvn.log"
  rm -rf "$KAFKA_LIBS.tmp"
  if ! mvn -q -B -f "$REPO/deploy/local/kafka/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$KAFKA_LIBS.tmp" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "maven could not resolve Kafka (full log: $log)"
  fi
  got="$(java -cp "$KAFKA_LIBS.tmp/*" kafka.Kafka --version 2>/dev/null | tail -n 1)"
  [ "$got" = "$KAFKA_VERSION" ] || die "kafka.Kafka --version printed '$got', expected $KAFKA_VERSION"
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  touch "$KAFKA_LIBS/.complete"
  done_ "ok ($(ls "$KAFKA_LIBS" | wc -l) jars)"
fi

# The HAPI FHIR validator (R4), for the reporting tests: jars only, run by
# deploy/local/fhir-validator/Validate.java.
HAPI_LIBS="$CACHE/hapi-fhir-$HAPI_FHIR_VERSION/libs"
step "hapi fhir validator $HAPI_FHIR_VERSION jars"
if [ -f "$HAPI_LIBS/hapi-fhir-validation-$HAPI_FHIR_VERSION.jar" ] && [ -f "$HAPI_LIBS/.complete" ]; then
  done_ "cached"
else
  log="$CACHE/hapi-fhir-mvn.log"
  rm -rf "$HAPI_LIBS.tmp"
  if ! mvn -q -B -f "$REPO/deploy/local/fhir-validator/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$HAPI_LIBS.tmp" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "maven could not resolve the HAPI FHIR validator (full log: $log)"
  fi
  rm -rf "$HAPI_LIBS"
  mv "$HAPI_LIBS.tmp" "$HAPI_LIBS"
  touch "$HAPI_LIBS/.complete"
  done_ "ok ($(ls "$HAPI_LIBS" | wc -l) jars)"
fi

# --------------------------------------------------------------------------------------------
# 3. Go binaries: versitygw, mailpit, jaeger
# --------------------------------------------------------------------------------------------
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || die "Go toolchain not found (need go >= 1.24)"
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"

# go_mod_version BINARY MODULE -> the version of MODULE embedded in BINARY (main module or dep)
go_mod_version() {
  go version -m "$1" 2>/dev/null | awk -v m="$2" '($1=="mod" || $1=="dep") && $2==m {print $3; exit}'
}

step "versitygw $VERSITYGW_VERSION"
if [ -x "$CACHE/bin/versitygw" ] \
   && [ "$(go_mod_version "$CACHE/bin/versitygw" github.com/versity/versitygw)" = "$VERSITYGW_VERSION" ]; then
  done_ "cached"
else
  log="$CACHE/versitygw-build.log"
  if ! GOBIN="$CACHE/bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" \
       >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "go install versitygw failed (full log: $log)"
  fi
  done_ "built"
fi

step "mailpit $MAILPIT_VERSION"
if [ -x "$CACHE/bin/mailpit" ] \
   && [ "$(go_mod_version "$CACHE/bin/mailpit" github.com/axllent/mailpit)" = "$MAILPIT_VERSION" ]; then
  done_ "cached"
else
  printf '(building, about 2 minutes cold) ... '
  log="$CACHE/mailpit-build.log"
  if ! GOBIN="$CACHE/bin" go install "github.com/axllent/mailpit@$MAILPIT_VERSION" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "go install mailpit failed (full log: $log)"
  fi
  done_ "built"
fi

# Toxiproxy: the fault proxies of `make chaos` (latency and connection resets between the
# services and Kafka, S3 and Orthanc). Its command is named `server`: installed as toxiproxy-server.
step "toxiproxy $TOXIPROXY_VERSION"
if [ -x "$CACHE/bin/toxiproxy-server" ] \
   && [ "$(go_mod_version "$CACHE/bin/toxiproxy-server" github.com/Shopify/toxiproxy/v2)" = "$TOXIPROXY_VERSION" ]; then
  done_ "cached"
else
  log="$CACHE/toxiproxy-build.log"
  TB="$CACHE/build/toxiproxy"
  mkdir -p "$TB"
  if ! GOBIN="$TB" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "go install toxiproxy failed (full log: $log)"
  fi
  mv "$TB/server" "$CACHE/bin/toxiproxy-server"
  done_ "built"
fi

# jaeger's go.mod has a replace directive, so `go install ...@v1.76.0` is refused; build it as a
# tool dependency of a scratch module instead. A lock file prevents two concurrent builds.
step "jaeger $JAEGER_VERSION"
if [ -x "$CACHE/bin/jaeger" ] \
   && [ "$(go_mod_version "$CACHE/bin/jaeger" github.com/jaegertracing/jaeger)" = "$JAEGER_VERSION" ]; then
  done_ "cached"
else
  printf '(building, takes several minutes cold) ... '
  JB="$CACHE/build/jaeger"
  mkdir -p "$JB"
  log="$CACHE/jaeger-build.log"
  if ! (
        flock -x 9
        cd "$JB"
        [ -f go.mod ] || go mod init secondread.local/jaeger-tool
        grep -q "github.com/jaegertracing/jaeger $JAEGER_VERSION" go.mod \
          || go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
        go build -o "$CACHE/bin/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
        mv "$CACHE/bin/jaeger.tmp" "$CACHE/bin/jaeger"
      ) 9>"$CACHE/build/jaeger.lock" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "jaeger build failed (full log: $log)"
  fi
  done_ "built"
fi

# --------------------------------------------------------------------------------------------
# 4. Keycloak (the local OIDC provider). It needs Java 21+: Debian 12's JDK is 17, so use
#    $SECONDREAD_JAVA_HOME or a newer JDK under /usr/lib/jvm (machines of this kind carry Temurin).
# --------------------------------------------------------------------------------------------
java_major() { "$1/bin/java" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}'; }
step "keycloak $KEYCLOAK_VERSION"
KC_JAVA=""
for jh in ${SECONDREAD_JAVA_HOME:-} /usr/lib/jvm/*; do
  [ -x "$jh/bin/java" ] && [ "$(java_major "$jh")" -ge 21 ] 2>/dev/null && { KC_JAVA="$jh"; break; }
done
[ -n "$KC_JAVA" ] || die "Keycloak needs Java 21 or later: set SECONDREAD_JAVA_HOME to such a JDK"
KC_HOME="$CACHE/keycloak-$KEYCLOAK_VERSION"
if [ -x "$KC_HOME/bin/kc.sh" ] && [ -f "$KC_HOME/.complete" ]; then
  done_ "cached"
else
  log="$CACHE/keycloak-install.log"
  rm -rf "$CACHE/build/keycloak"
  if ! { mvn -q -B dependency:copy \
           "-Dartifact=org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
           -DoutputDirectory="$CACHE/build/keycloak" \
         && unzip -q "$CACHE/build/keycloak/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip" \
              -d "$CACHE/build/keycloak"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "could not fetch Keycloak from Maven (full log: $log)"
  fi
  rm -rf "$KC_HOME"
  mv "$CACHE/build/keycloak/keycloak-$KEYCLOAK_VERSION" "$KC_HOME"
  rm -rf "$CACHE/build/keycloak"
  echo "$KC_JAVA" >"$KC_HOME/.java-home"
  touch "$KC_HOME/.complete"
  done_ "ok (java: $KC_JAVA)"
fi
echo "$KC_JAVA" >"$KC_HOME/.java-home"

# --------------------------------------------------------------------------------------------
# 5. uv and the project's Python environment
# --------------------------------------------------------------------------------------------
UV="$CACHE/uv-venv/bin/uv"
step "uv $UV_VERSION"
if [ -x "$UV" ] && [ "$("$UV" --version 2>/dev/null | awk '{print $2}')" = "$UV_VERSION" ]; then
  done_ "cached"
else
  log="$CACHE/uv-install.log"
  { [ -x "$CACHE/uv-venv/bin/pip" ] || python3 -m venv "$CACHE/uv-venv"; } >"$log" 2>&1 \
    || die "python3 -m venv failed (is python3-venv installed?); log: $log"
  "$CACHE/uv-venv/bin/pip" install -q "uv==$UV_VERSION" >>"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; die "pip install uv failed (full log: $log)"; }
  done_ "installed"
fi

step "python env (.venv)"
cd "$REPO"
note=""
if [ ! -x .venv/bin/python ]; then
  # The machine's python3 is 3.11; never let uv fetch a managed interpreter instead.
  UV_PYTHON_DOWNLOADS=never "$UV" venv -q .venv --python "$PYTHON_VERSION"
  note="created, "
fi
log="$CACHE/uv-sync.log"
if ! "$UV" pip sync -q --compile-bytecode --python .venv/bin/python requirements.lock >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  die "uv pip sync failed (full log: $log)"
fi
done_ "${note}synced to requirements.lock"

# --------------------------------------------------------------------------------------------
# 6. Front-end packages: the OHIF viewer's built dist/, dcmjs, tus-js-client, keycloak-js
# --------------------------------------------------------------------------------------------
step "web packages (npm ci)"
stamp="$REPO/web/node_modules/.secondread-lock.sha256"
want="$(sha256sum "$REPO/web/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  done_ "up to date"
else
  log="$CACHE/npm-ci.log"
  # --ignore-scripts: nothing runs at install; the packages are served as shipped
  if ! (cd "$REPO/web" && npm ci --ignore-scripts --cache "$CACHE/npm" >"$log" 2>&1); then
    tail -n 20 "$log" >&2
    die "npm ci failed (full log: $log)"
  fi
  echo "$want" >"$stamp"
  done_ "installed"
fi

echo "install.sh: done in $(( $(date +%s) - T0 ))s (cache: $CACHE)"
