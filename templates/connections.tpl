{{%AUTOESCAPE context="HTML"}}
{{!connections.tpl: /admin/connections: connected now, then the log with filters. The log's
   columns follow the first table's order (who, how, from where, when); what is left of a
   wide log past 1280 px scrolls inside its card.}}
<div class="page-head"><h1>Connections</h1></div>

{{#LARAVEL}}<section class="card">
  <h2>Laravel channels <span class="count">{{CHANNEL_COUNT}}</span></h2>
  <p class="muted">rtd --laravel-config: each channel's subscribed sockets, over every running
    node, as of their last heartbeat.</p>
  <div class="table-wrap">
  <table class="data channels">
    <thead><tr><th>Channel</th><th class="num">Subscribers</th></tr></thead>
    <tbody>
    {{#CHANNEL}}<tr data-channel="{{NAME}}"><td class="mono" data-label="Channel">{{NAME}}</td>
      <td class="num" data-label="Subscribers">{{SUBSCRIBERS}}</td></tr>
    {{/CHANNEL}}
    {{#NO_CHANNEL}}<tr><td colspan="2" class="muted">No channel has subscribers.</td></tr>{{/NO_CHANNEL}}
    </tbody>
  </table>
  </div>
</section>{{/LARAVEL}}

<section class="card">
  <h2>Connected now <span class="count">{{ACTIVE_COUNT}}</span></h2>
  {{#ACTIVE_MORE}}<p class="muted">Showing the newest {{SHOWN}}.</p>{{/ACTIVE_MORE}}
  <div class="table-wrap">
  <table class="data log">
    <thead><tr><th class="num">#</th><th>Socket</th><th>Platform</th><th>User</th>
      <th>Transport</th><th>Address</th><th>Connected (UTC)</th><th>For</th></tr></thead>
    <tbody>
    {{#ACTIVE_ROW}}<tr>
      <td class="num" data-label="#">{{ID}}</td>
      <td class="mono" data-label="Socket">{{SOCKET}}</td>
      <td data-label="Platform"><span class="tag">{{PLATFORM}}</span></td>
      <td data-label="User">{{USER}}</td>
      <td data-label="Transport">{{TRANSPORT}}</td>
      <td data-label="Address">{{ADDR}}</td>
      <td class="nowrap" data-label="Connected">{{CONNECTED}}</td>
      <td data-label="For">{{DURATION}}</td>
    </tr>
    {{/ACTIVE_ROW}}
    {{#ACTIVE_EMPTY}}<tr><td colspan="8" class="muted">Nobody is connected.</td></tr>{{/ACTIVE_EMPTY}}
    </tbody>
  </table>
  </div>
</section>

<h2>Connection log</h2>
<form method="get" action="/admin/connections" class="card filters">
  <label>Platform
    <select name="platform">
      <option value="">any</option>
      {{#PLATFORM_OPTION}}
      <option value="{{NAME}}" {{#SELECTED}}selected{{/SELECTED}}>{{NAME}}</option>
      {{/PLATFORM_OPTION}}
    </select>
  </label>
  <label>User <input name="user" value="{{F_USER}}" maxlength="256"></label>
  <label>Socket <input name="socket" value="{{F_SOCKET}}" maxlength="256"></label>
  <label>Status
    <select name="status">
      <option value="" {{#STATUS_ANY}}selected{{/STATUS_ANY}}>any</option>
      <option value="active" {{#STATUS_ACTIVE}}selected{{/STATUS_ACTIVE}}>active</option>
      <option value="disconnected" {{#STATUS_CLOSED}}selected{{/STATUS_CLOSED}}>closed</option>
    </select>
  </label>
  <label>From <input name="from" value="{{F_FROM}}" type="date"></label>
  <label>To <input name="to" value="{{F_TO}}" type="date"></label>
  <div class="actions">
    <button type="submit">Filter</button>
    {{#FILTERED}}<a href="/admin/connections">Clear</a>{{/FILTERED}}
  </div>
</form>

{{#SCAN_CAPPED}}<p class="notice">Searched {{SCAN_ROWS}} connections down to #{{DOWN_TO}}
  without filling the page; use "Older" to keep searching.</p>{{/SCAN_CAPPED}}

<div class="table-wrap card">
<table class="data log">
  <thead><tr><th class="num">#</th><th>Socket</th><th>Platform</th><th>User</th>
    <th>Transport</th><th>Address</th><th>Connected (UTC)</th><th>Disconnected</th>
    <th>Duration</th><th>Status</th><th>App</th><th>User agent</th></tr></thead>
  <tbody>
  {{#ROW}}<tr>
    <td class="num" data-label="#">{{ID}}</td>
    <td class="mono" data-label="Socket">{{SOCKET}}</td>
    <td data-label="Platform"><span class="tag">{{PLATFORM}}</span></td>
    <td data-label="User">{{USER}}</td>
    <td data-label="Transport">{{TRANSPORT}}</td>
    <td data-label="Address">{{ADDR}}</td>
    <td class="nowrap" data-label="Connected">{{CONNECTED}}</td>
    <td class="nowrap" data-label="Disconnected">{{DISCONNECTED}}</td>
    <td data-label="Duration">{{DURATION}}{{#OPEN}} <span class="muted">(open)</span>{{/OPEN}}</td>
    <td data-label="Status"><span class="status-{{STATUS}}">{{STATUS}}</span></td>
    <td data-label="App">{{APP}}</td>
    <td class="ua" data-label="User agent" title="{{UA}}">{{UA}}</td>
  </tr>
  {{/ROW}}
  {{#EMPTY}}<tr><td colspan="12" class="muted">No connections match.</td></tr>{{/EMPTY}}
  </tbody>
</table>
</div>

<nav class="pager" aria-label="Pages">
  {{#NEWEST}}<a href="/admin/connections?{{QS}}">« Newest</a>{{/NEWEST}}
  {{#NEWER}}<a href="/admin/connections?{{QS}}" rel="prev">‹ Newer</a>{{/NEWER}}
  {{#OLDER}}<a href="/admin/connections?{{QS}}" rel="next">Older ›</a>{{/OLDER}}
</nav>
