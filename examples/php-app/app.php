<?php
// A tiny long-running PHP "application" for the DB-failover scenario and the demo. Like php-fpm, it loads its
// database config (db.php, rendered by vigie from templates/db.php.hbs) once at start and again only when told to,
// by SIGHUP; so if vigie did not signal it, it would keep using the old master.
//
//   php app.php PORT DB_PHP PIDFILE
//
// Every HTTP request gets one JSON line: {"pid":..,"reloads":N,"db":<what db.php returned>}.
declare(strict_types=1);

[$_, $port, $configPath, $pidfile] = array_pad($argv, 4, null);
if ($port === null || $configPath === null || $pidfile === null) {
    fwrite(STDERR, "usage: php app.php PORT DB_PHP PIDFILE\n");
    exit(2);
}

function load_config(string $path): array
{
    // The CLI has no opcache by default, but be explicit: a reload must read the new bytes.
    if (function_exists('opcache_invalidate')) {
        opcache_invalidate($path, true);
    }
    clearstatcache(true, $path);
    $config = include $path;
    if (!is_array($config)) {
        throw new RuntimeException("$path did not return an array");
    }
    return $config;
}

$config = load_config($configPath);
$reloads = 0;

pcntl_async_signals(true);
pcntl_signal(SIGHUP, function () use (&$config, &$reloads, $configPath): void {
    try {
        $config = load_config($configPath);
        $reloads++;
        // One line per reload, so a watcher (the demo, the benchmark) sees the moment it took effect.
        fwrite(STDOUT, 'reloaded ' . json_encode($config) . "\n");
    } catch (Throwable $error) {
        // Keep serving with the previous config, as a real app would.
        fwrite(STDERR, "reload failed: {$error->getMessage()}\n");
    }
});
pcntl_signal(SIGTERM, function (): void {
    exit(0);
});

$server = stream_socket_server("tcp://127.0.0.1:$port", $errno, $errstr);
if ($server === false) {
    fwrite(STDERR, "listen 127.0.0.1:$port: $errstr\n");
    exit(1);
}
// Written only once listening, so whoever waits for the pidfile can send requests right away.
file_put_contents($pidfile, getmypid() . "\n");

while (true) {
    // A signal interrupts accept(); that is expected, so the warning is silenced and the loop goes on.
    $connection = @stream_socket_accept($server, -1);
    if ($connection === false) {
        continue;
    }
    stream_set_timeout($connection, 2);
    while (($line = fgets($connection)) !== false && trim($line) !== '') {
        // Read the request head up to the blank line; the app answers the same to every path.
    }
    $body = json_encode(['pid' => getmypid(), 'reloads' => $reloads, 'db' => $config]) . "\n";
    fwrite($connection, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        . strlen($body) . "\r\nConnection: close\r\n\r\n" . $body);
    fclose($connection);
}
