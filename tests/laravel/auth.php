<?php
// auth.php: a /broadcasting/auth for `php -S`, built on Laravel's own RedisBroadcaster::auth
// and validAuthenticationResponse (Debian's php-illuminate-broadcasting and -http), as a
// Laravel app's Broadcast::routes() serves it. The user is "Bearer <id>" in Authorization
// or the laravel_session cookie "user-<id>" (stand-ins for the token and session guards);
// routes/channels.php's callbacks are below.
require '/usr/share/php/Illuminate/Http/autoload.php';
require '/usr/share/php/Illuminate/Redis/autoload.php';
require '/usr/share/php/Illuminate/Broadcasting/autoload.php';

use Illuminate\Broadcasting\Broadcasters\RedisBroadcaster;
use Illuminate\Http\Request;
use Symfony\Component\HttpKernel\Exception\HttpException;

class User
{
    public function __construct(public int $id) {}
    public function getAuthIdentifier() { return $this->id; }
}

$request = Request::capture();
$auth = $request->header('Authorization');
$session = $request->cookie('laravel_session');
$user = $auth && preg_match('/^Bearer (\d+)$/', $auth, $m) ? new User((int) $m[1])
    : ($session && preg_match('/^user-(\d+)$/', $session, $m) ? new User((int) $m[1]) : null);
$request->setUserResolver(fn () => $user);

$b = new RedisBroadcaster(new Illuminate\Redis\RedisManager(new Illuminate\Container\Container(), 'predis', []));
$b->channel('orders.{id}', fn ($user, $id) => (int) $id === 1 || $user->id === 9);
$b->channel('room', fn ($user) => ['name' => "u{$user->id}"]);
try {
    $answer = $b->auth($request); // verifyUserCanAccessChannel answers validAuthenticationResponse
    header('Content-Type: application/json');
    echo $answer;
} catch (HttpException $e) {
    http_response_code($e->getStatusCode());
    header('Content-Type: application/json');
    echo json_encode(['message' => '']);
}
