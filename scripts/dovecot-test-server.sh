#!/usr/bin/env bash
# A throwaway Dovecot IMAP server on loopback for labelsync's IMAP tests.
#
#   eval "$(bash scripts/dovecot-test-server.sh start)"   # start (or reuse) it, export where it is
#   bash scripts/dovecot-test-server.sh env                # print the export lines again
#   bash scripts/dovecot-test-server.sh stop               # stop it and delete its data
#
# `start` installs Dovecot from the Debian packages (dovecot-imapd) if no
# `dovecot` is found and it runs as root, writes a config of its own under
# LABELSYNC_IMAP_DIR (never the system's /etc/dovecot), makes a self-signed
# certificate for 127.0.0.1, starts Dovecot on 127.0.0.1 on two free ports
# (STARTTLS on the first, implicit TLS on the second) and prints
# `export LABELSYNC_IMAP_...=` lines on stdout; everything else goes to stderr.
# It is idempotent: a server it started earlier is reused. tests/imap_fixtures.py
# runs it itself, so a plain `pytest` needs nothing but Dovecot installed.
#
# Accounts (password "secret" for each), seeded with doveadm:
#   ana    "/" delimiter (maildir LAYOUT=fs); SPECIAL-USE folders with German
#          and non-ASCII names, a custom folder called "Inbox", a hierarchy.
#   bo     "." delimiter (maildir++); SPECIAL-USE Sent, folders under INBOX.
#   carla  no folder carries a SPECIAL-USE attribute, and the server does not
#          advertise SPECIAL-USE to her: her Sent folder is only a name.
#
# Settings (environment): LABELSYNC_IMAP_DIR (default /tmp/labelsync-dovecot),
# LABELSYNC_IMAP_PORT (first port tried, default 10143).
set -euo pipefail

BASE=${LABELSYNC_IMAP_DIR:-/tmp/labelsync-dovecot}
FIRST_PORT=${LABELSYNC_IMAP_PORT:-10143}
PASSWORD=secret

say() { echo "dovecot-test-server: $*" >&2; }

install_dovecot() {
    say "no dovecot found; installing it from the Debian packages (dovecot-imapd)"
    if [[ $(id -u) -ne 0 ]]; then
        say "not root: install Dovecot yourself (apt-get install dovecot-imapd)"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends dovecot-imapd openssl >&2
}

port_in_use() {
    # /dev/tcp succeeds when something listens on the port.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local port=$1
    while port_in_use "$port"; do
        port=$((port + 1))
    done
    echo "$port"
}

exports() {
    echo "export LABELSYNC_IMAP_HOST=127.0.0.1"
    echo "export LABELSYNC_IMAP_PORT=$(cat "$BASE/port")"
    echo "export LABELSYNC_IMAP_SSL_PORT=$(cat "$BASE/ssl_port")"
    echo "export LABELSYNC_IMAP_CA=$BASE/cert.pem"
    echo "export LABELSYNC_IMAP_PASSWORD=$PASSWORD"
}

running() {
    [[ -f $BASE/port && -f $BASE/run/master.pid ]] || return 1
    kill -0 "$(cat "$BASE/run/master.pid")" 2>/dev/null
}

doveadm_() {
    doveadm -c "$BASE/dovecot.conf" "$@"
}

seed() {
    local user=$1
    shift
    local mailbox
    for mailbox in "$@"; do
        doveadm_ mailbox create -u "$user" "$mailbox"
    done
}

start() {
    if running; then
        say "already running on 127.0.0.1:$(cat "$BASE/port") and :$(cat "$BASE/ssl_port")"
        exports
        return 0
    fi
    command -v dovecot >/dev/null 2>&1 || install_dovecot
    command -v openssl >/dev/null 2>&1 || install_dovecot

    # A leftover directory from a server that is gone (killed, machine reused): start afresh.
    rm -rf "$BASE"
    mkdir -p "$BASE/run" "$BASE/mail"
    local port ssl_port
    port=$(free_port "$FIRST_PORT")
    ssl_port=$(free_port $((port + 1)))
    echo "$port" >"$BASE/port"
    echo "$ssl_port" >"$BASE/ssl_port"

    # Who the server runs as: as root, Dovecot's own users and `nobody` for the
    # mail (Dovecot refuses mail access as root); otherwise the caller throughout.
    local internal login mail_uid mail_gid
    if [[ $(id -u) -eq 0 ]]; then
        internal=dovecot login=dovenull mail_uid=$(id -u nobody) mail_gid=$(id -g nobody)
    else
        internal=$(id -un) login=$(id -un) mail_uid=$(id -u) mail_gid=$(id -g)
    fi

    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$BASE/key.pem" -out "$BASE/cert.pem" >/dev/null 2>&1

    # passwd-file: user:password:uid:gid::home::extra fields. The "mail" field
    # picks each account's maildir layout and so its hierarchy delimiter;
    # carla's imap_capability (one word: extra fields split at spaces) leaves
    # SPECIAL-USE out of what she is told after login.
    cat >"$BASE/users" <<EOF
ana:{PLAIN}$PASSWORD:$mail_uid:$mail_gid::$BASE/mail/ana::userdb_mail=maildir:~/Maildir:LAYOUT=fs
bo:{PLAIN}$PASSWORD:$mail_uid:$mail_gid::$BASE/mail/bo::userdb_mail=maildir:~/Maildir
carla:{PLAIN}$PASSWORD:$mail_uid:$mail_gid::$BASE/mail/carla::userdb_mail=maildir:~/Maildir:LAYOUT=fs userdb_imap_capability=IMAP4rev1
EOF
    cat >"$BASE/dovecot.conf" <<EOF
# Written by scripts/dovecot-test-server.sh: a throwaway test server.
protocols = imap
listen = 127.0.0.1
base_dir = $BASE/run
state_dir = $BASE/state
instance_name = labelsync-test-$port
log_path = $BASE/dovecot.log
default_internal_user = $internal
default_internal_group = $internal
default_login_user = $login
first_valid_uid = 1
mail_location = maildir:~/Maildir

ssl = yes
ssl_cert = <$BASE/cert.pem
ssl_key = <$BASE/key.pem
# Passwords only over TLS (STARTTLS or implicit), as a real server.
disable_plaintext_auth = yes
auth_mechanisms = plain login

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $BASE/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $BASE/users
}

namespace inbox {
  inbox = yes
  mailbox "Gesendete Objekte" {
    special_use = \Sent
  }
  mailbox Sent {
    special_use = \Sent
  }
  mailbox "Entwürfe" {
    special_use = \Drafts
  }
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox "Gelöschte Elemente" {
    special_use = \Trash
  }
  mailbox Junk {
    special_use = \Junk
  }
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $ssl_port
    ssl = yes
  }
}
service auth {
  unix_listener auth-userdb {
    mode = 0666
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
EOF
    mkdir -p "$BASE/state" "$BASE/mail/ana" "$BASE/mail/bo" "$BASE/mail/carla"
    [[ $(id -u) -eq 0 ]] && chown -R "$mail_uid:$mail_gid" "$BASE/mail"

    # The daemon must not keep this script's stdout open: a caller reading the
    # exports until end of file would wait for as long as Dovecot runs.
    dovecot -c "$BASE/dovecot.conf" </dev/null >"$BASE/start.log" 2>&1 \
        || { cat "$BASE/start.log" "$BASE/dovecot.log" >&2 2>/dev/null; exit 1; }
    local tries=0
    until port_in_use "$port" && port_in_use "$ssl_port"; do
        tries=$((tries + 1))
        if [[ $tries -gt 100 ]]; then
            say "Dovecot did not start listening"
            cat "$BASE/dovecot.log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    # doveadm looks the users up through the running server's auth process.
    seed ana "Gesendete Objekte" "Entwürfe" "Gelöschte Elemente" Junk \
        "Projekte/Kunde Ä" "Projects/Inbox" "Reçus 2024" "日本語"
    seed bo Sent Drafts "Projekte.Kunde Ä" "Archiv" "Clients.Inbox"
    seed carla Gesendet "Rechnungen" "Archiv 2024"
    say "started Dovecot $(dovecot --version | awk '{print $1}') on 127.0.0.1:$port (STARTTLS) and :$ssl_port (TLS)"
    exports
}

stop() {
    if running; then
        doveadm_ stop >/dev/null 2>&1 || kill "$(cat "$BASE/run/master.pid")" 2>/dev/null || true
    fi
    rm -rf "$BASE"
    say "stopped"
}

case ${1:-} in
start) start ;;
stop) stop ;;
env)
    if running; then
        exports
    else
        say "not running; use: $0 start"
        exit 1
    fi
    ;;
*)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
