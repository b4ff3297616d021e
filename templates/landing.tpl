{{%AUTOESCAPE context="HTML"}}
{{!landing.tpl: the public "coming soon" page with the countdown and the subscription form.}}
<div class="landing">
  <section class="hero">
    <img class="logo" src="/static/icon.svg" alt="" width="72" height="72">
    <p class="eyebrow">Coming soon</p>
    <h1>{{SITE_NAME}}</h1>
    <p class="lead">Realtime messaging for every app you run. Flutter apps, Laravel backends and
      web pages connect with their ordinary Socket.IO clients, over WebSocket or HTTP long-polling,
      and every message is delivered instantly and kept in a searchable history.</p>
    <ul class="features">
      <li><strong>Every platform</strong> Flutter, Laravel (PHP) and the browser, side by side.</li>
      <li><strong>Instant</strong> WebSocket first, polling when a network needs it.</li>
      <li><strong>Kept</strong> Every connection and message stored and searchable.</li>
    </ul>
  </section>

  <section class="countdown-card" aria-label="Launch countdown">
    {{#COUNTDOWN}}
    <p class="eyebrow">We launch on <time datetime="{{LAUNCH_ISO}}">{{LAUNCH_DAY}}</time></p>
    <div class="countdown" data-launch="{{LAUNCH_ISO}}">
      <div><span data-unit="days">{{DAYS}}</span><small>days</small></div>
      <div><span data-unit="hours">{{HOURS}}</span><small>hours</small></div>
      <div><span data-unit="minutes">{{MINUTES}}</span><small>minutes</small></div>
      <div><span data-unit="seconds">{{SECONDS}}</span><small>seconds</small></div>
    </div>
    {{/COUNTDOWN}}
    {{#LAUNCHED}}
    <p class="launched">We are live since <time datetime="{{LAUNCH_ISO}}">{{LAUNCH_DAY}}</time>.</p>
    {{/LAUNCHED}}
  </section>

  <section class="subscribe card">
    <h2>Hear about the launch</h2>
    <p>Leave your e-mail address and we will write once, when we open.</p>
    {{#NOTICE}}<p class="notice {{KIND}}" role="status">{{TEXT}}</p>{{/NOTICE}}
    <form method="post" action="/subscribe" class="inline-form">
      <input type="hidden" name="csrf" value="{{CSRF}}">
      <label class="sr-only" for="email">E-mail address</label>
      <input id="email" name="email" type="email" required maxlength="254" autocomplete="email"
             placeholder="you@example.com" value="{{EMAIL}}">
      <button type="submit">Notify me</button>
    </form>
  </section>
  <footer class="site-footer"><a href="/admin">Operators</a></footer>
</div>
