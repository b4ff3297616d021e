{{%AUTOESCAPE context="HTML"}}
{{!dashboard.tpl: /admin. Elements with data-stat are refreshed in place by static/site.js
   from /admin/stats.json; the page is complete without it.}}
<div class="page-head">
  <h1>Dashboard</h1>
  <p class="muted" data-live="/admin/stats.json" data-refresh-ms="{{REFRESH_MS}}">As of
    <time data-stat="generatedAt">{{GENERATED_AT}}</time> UTC</p>
</div>

<section class="tiles" aria-label="Totals">
  <div class="tile"><span class="label">Connections, all time</span>
    <span class="value" data-stat="connections.total">{{CONNECTIONS_TOTAL}}</span></div>
  <div class="tile"><span class="label">Connected now</span>
    <span class="value" data-stat="connections.active">{{CONNECTIONS_ACTIVE}}</span></div>
  <div class="tile"><span class="label">Average session</span>
    <span class="value" data-stat="sessions.avgMs"
          data-format="duration">{{SESSION_AVG}}</span></div>
  <div class="tile"><span class="label">Longest session</span>
    <span class="value" data-stat="sessions.maxMs"
          data-format="duration">{{SESSION_MAX}}</span></div>
  <div class="tile"><span class="label">Messages, all time</span>
    <span class="value" data-stat="messages.total">{{MESSAGES_TOTAL}}</span></div>
  <div class="tile"><span class="label">Messages today (UTC)</span>
    <span class="value" data-stat="messages.today">{{MESSAGES_TODAY}}</span></div>
  <div class="tile"><span class="label">Database size</span>
    <span class="value" data-stat="dbBytes" data-format="bytes">{{DB_SIZE}}</span></div>
  <div class="tile"><span class="label">Realtime daemon</span>
    <span class="value health {{HEALTH_CLASS}}" data-stat="daemon.health"
          data-format="health">{{HEALTH}}</span></div>
</section>
<p class="muted"><a href="/admin/live/">Live console</a>: the Socket.IO Admin UI on this
  server (sockets and rooms now; rtd --admin-ui), with the same admin logins.</p>

<section class="charts">
{{#CHART}}
  <figure class="card chart">
    <figcaption>{{CAPTION}}</figcaption>
    <svg viewBox="0 0 {{W}} {{H}}" role="img" aria-label="{{CAPTION}}" data-chart="{{ID}}"
         data-top="{{TOP}}" data-plot-h="{{PH}}" preserveAspectRatio="xMidYMid meet">
      {{#GRID}}<line class="grid" x1="{{X1}}" x2="{{X2}}" y1="{{Y}}" y2="{{Y}}"></line>
      <text class="ylabel" x="{{LX}}" y="{{LY}}" data-frac="{{FRAC}}">{{LABEL}}</text>
      {{/GRID}}
      {{#BAR}}<rect class="bar" x="{{X}}" y="{{Y}}" width="{{BW}}" height="{{BH}}"
                    data-i="{{I}}"><title>{{TIP}}</title></rect>
      {{/BAR}}
      {{#XLABEL}}<text class="xlabel" x="{{X}}" y="{{Y}}" data-i="{{I}}">{{LABEL}}</text>
      {{/XLABEL}}
    </svg>
  </figure>
{{/CHART}}
</section>

<section class="two-col">
  <div class="card">
    <h2>Connections by platform</h2>
    {{#CONN_PLATFORMS}}
    <table class="platforms" data-platforms="connectionsByPlatform">
      <thead><tr><th>Platform</th><th class="num">Connections</th><th>Share</th></tr></thead>
      <tbody>
      {{#ROW}}<tr><td>{{NAME}}</td><td class="num">{{COUNT}}</td>
        <td><meter min="0" max="100" value="{{PCT}}">{{PCT}}%</meter></td></tr>
      {{/ROW}}
      {{#EMPTY}}<tr><td colspan="3" class="muted">No connections yet.</td></tr>{{/EMPTY}}
      </tbody>
    </table>
    {{/CONN_PLATFORMS}}
  </div>
  <div class="card">
    <h2>Messages by platform</h2>
    {{#MSG_PLATFORMS}}
    <table class="platforms" data-platforms="messagesByPlatform">
      <thead><tr><th>Platform</th><th class="num">Messages</th><th>Share</th></tr></thead>
      <tbody>
      {{#ROW}}<tr><td>{{NAME}}</td><td class="num">{{COUNT}}</td>
        <td><meter min="0" max="100" value="{{PCT}}">{{PCT}}%</meter></td></tr>
      {{/ROW}}
      {{#EMPTY}}<tr><td colspan="3" class="muted">No messages yet.</td></tr>{{/EMPTY}}
      </tbody>
    </table>
    {{/MSG_PLATFORMS}}
  </div>
</section>

<section class="card">
  <h2>Realtime daemon</h2>
  <dl class="facts">
    <dt>Health</dt><dd><span class="health {{HEALTH_CLASS}}" data-stat="daemon.health"
                              data-format="health">{{HEALTH}}</span></dd>
    <dt>Last heartbeat</dt><dd data-stat="daemon.heartbeatAgeMs" data-format="age">{{HEARTBEAT}}</dd>
    <dt>Process</dt><dd><span data-stat="daemon.pid">{{PID}}</span>,
      version <span data-stat="daemon.version">{{VERSION}}</span></dd>
    <dt>Started</dt><dd data-stat="daemon.startedAt">{{STARTED_AT}}</dd>
    <dt>Stopped</dt><dd data-stat="daemon.stoppedAt">{{STOPPED_AT}}</dd>
    <dt>Sockets open</dt><dd data-stat="daemon.connections">{{D_CONNECTIONS}}</dd>
    <dt>Messages in / out</dt><dd><span data-stat="daemon.messagesIn">{{D_MESSAGES_IN}}</span> /
      <span data-stat="daemon.messagesOut">{{D_MESSAGES_OUT}}</span></dd>
    <dt>Closed sessions</dt><dd data-stat="sessions.closed">{{SESSIONS_CLOSED}}</dd>
    {{#LARAVEL}}<dt>Laravel broadcasts</dt><dd><span data-laravel="broadcasts" data-stat="laravel.broadcasts">{{BROADCASTS}}</span>
      events to channels, <span data-laravel="deliveries" data-stat="laravel.deliveries">{{DELIVERIES}}</span> deliveries
      <span class="muted">(since each node started)</span></dd>{{/LARAVEL}}
  </dl>
  <div class="table-wrap">
  <table class="data nodes" data-nodes="nodes">
    <caption>Nodes (one row per rtd writing this database)</caption>
    <thead><tr><th>Node</th><th>Health</th><th>Last heartbeat</th><th>Process</th>
      <th>Started</th><th class="num">Sockets</th><th class="num">Messages in</th>
      <th class="num">Messages out</th></tr></thead>
    <tbody>
    {{#NODE}}<tr data-node="{{NODE_ID}}"><td>{{NODE_ID}}</td>
      <td><span class="health {{HEALTH_CLASS}}">{{HEALTH}}</span></td><td>{{HEARTBEAT}}</td>
      <td>{{PID}}, {{VERSION}}</td><td>{{STARTED_AT}}</td><td class="num">{{CONNECTIONS}}</td>
      <td class="num">{{MESSAGES_IN}}</td><td class="num">{{MESSAGES_OUT}}</td></tr>
    {{/NODE}}
    {{#NO_NODES}}<tr><td colspan="8" class="muted">No rtd has started on this database yet.</td></tr>{{/NO_NODES}}
    </tbody>
  </table>
  </div>
</section>
