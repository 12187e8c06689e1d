#!/bin/sh
# Create or change OneEye's broker users in a Mosquitto password file (no password is kept in
# this repository: each is asked for, or read from the environment variable named below).
#
#   make-users.sh FILE server              the central servers' user, oneeye-server
#   make-users.sh FILE edge EDGE_ID        an edge's user; its name is its edge id
#   make-users.sh FILE remove USER         delete a user (an edge taken out of service)
#
# With ONEEYE_BROKER_PASSWORD set, the password is taken from it instead of asked for.
# Mosquitto reads the file at start and on SIGHUP (systemctl reload mosquitto), after dropping
# to its own user: run as root, this gives the file to that user (mosquitto, or the user named
# in ONEEYE_BROKER_OWNER), mode 0600, or Mosquitto stops with "Unable to open pwfile".
set -eu

owner=${ONEEYE_BROKER_OWNER:-mosquitto}

# The file readable by the broker's user and nobody else (a root-owned 0600 file is not).
fix_owner() {
    chmod 600 "$file" 2>/dev/null || true
    if [ "$(id -u)" = 0 ] && id "$owner" >/dev/null 2>&1; then
        chown "$owner" "$file"
    fi
}

usage() {
    echo "usage: $0 FILE server | FILE edge EDGE_ID | FILE remove USER" >&2
    exit 2
}

[ $# -ge 2 ] || usage
file=$1
what=$2
case "$what" in
    server)
        [ $# -eq 2 ] || usage
        user=oneeye-server
        ;;
    edge)
        [ $# -eq 3 ] || usage
        user=$3
        # The edge id is a topic level and the ACL's %u: a slug, and never the servers' user.
        if ! printf '%s' "$user" | grep -Eq '^[a-z0-9_-]{1,64}$'; then
            echo "an edge id is 1-64 lower-case letters, digits, - or _: $user" >&2
            exit 2
        fi
        if [ "$user" = oneeye-server ]; then
            echo "oneeye-server is the servers' user, not an edge id" >&2
            exit 2
        fi
        ;;
    remove)
        [ $# -eq 3 ] || usage
        mosquitto_passwd -D "$file" "$3"
        fix_owner
        exit 0
        ;;
    *)
        usage
        ;;
esac

if [ ! -e "$file" ]; then
    (umask 077 && : >"$file")
fi
if [ -n "${ONEEYE_BROKER_PASSWORD:-}" ]; then
    mosquitto_passwd -b "$file" "$user" "$ONEEYE_BROKER_PASSWORD"
else
    mosquitto_passwd "$file" "$user"
fi
fix_owner
echo "broker user $user set in $file" >&2
