<?php
// publish.php HOST PORT PREFIX CHANNEL EVENT JSON_PAYLOAD: Laravel's own RedisBroadcaster (Debian's
// php-illuminate-broadcasting, php-illuminate-redis, php-predis) publishing one event, as
// broadcast(new Event) does in a Laravel app with BROADCAST_DRIVER=redis.
require '/usr/share/php/Illuminate/Redis/autoload.php';
require '/usr/share/php/Illuminate/Broadcasting/autoload.php';
require_once '/usr/share/php/Predis/autoload.php';

[, $host, $port, $prefix, $channel, $event, $json] = $argv;
$app = new Illuminate\Container\Container();
$redis = new Illuminate\Redis\RedisManager($app, 'predis', [
    'default' => ['host' => $host, 'port' => (int) $port, 'database' => 0],
]);
// Laravel 8.83's predis path does not prefix PUBLISH channels; the broadcaster's own prefix
// stands in for the connection prefix (laravel_database_) that phpredis adds.
$b = new Illuminate\Broadcasting\Broadcasters\RedisBroadcaster($redis, 'default', $prefix);
$b->broadcast([$channel], $event, json_decode($json, true));
echo "ok\n";
