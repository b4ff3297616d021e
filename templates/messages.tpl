{{%AUTOESCAPE context="HTML"}}
{{!messages.tpl: /admin/messages, the history with filters and keyset pagination.
   The message text uses :pre_escape, ctemplate's HTML escaping that keeps CR/LF and tabs
   (the default :h turns them into spaces); its cell shows them with white-space: pre-wrap.}}
<div class="page-head">
  <h1>Messages</h1>
  <a class="button secondary" href="/admin/messages.csv?{{CSV_QS}}" download>Export CSV</a>
</div>

<form method="get" action="/admin/messages" class="card filters">
  <label>Platform
    <select name="platform">
      <option value="">any</option>
      {{#PLATFORM_OPTION}}
      <option value="{{NAME}}" {{#SELECTED}}selected{{/SELECTED}}>{{NAME}}</option>
      {{/PLATFORM_OPTION}}
    </select>
  </label>
  <label>Sender <input name="sender" value="{{F_SENDER}}" maxlength="256"></label>
  <label>Room <input name="room" value="{{F_ROOM}}" maxlength="256"></label>
  <label>Text contains <input name="q" value="{{F_Q}}" maxlength="256" type="search"></label>
  <label>From <input name="from" value="{{F_FROM}}" type="date"></label>
  <label>To <input name="to" value="{{F_TO}}" type="date"></label>
  <div class="actions">
    <button type="submit">Filter</button>
    {{#FILTERED}}<a href="/admin/messages">Clear</a>{{/FILTERED}}
  </div>
</form>

{{#SCAN_CAPPED}}<p class="notice">Searched {{SCAN_ROWS}} messages down to #{{DOWN_TO}}
  without filling the page; use "Older" to keep searching.</p>{{/SCAN_CAPPED}}

<div class="table-wrap card">
<table class="data messages">
  <thead><tr><th class="num">#</th><th>Time (UTC)</th><th>Platform</th><th>Sender</th>
    <th>Room</th><th>Message</th></tr></thead>
  <tbody>
  {{#ROW}}<tr>
    <td class="num" data-label="#">{{ID}}</td>
    <td class="nowrap" data-label="Time">{{TIME}}</td>
    <td data-label="Platform"><span class="tag">{{PLATFORM}}</span></td>
    <td data-label="Sender" title="socket {{SOCKET}}">{{SENDER}}</td>
    <td data-label="Room">{{#ROOM}}{{NAME}}{{/ROOM}}
      {{#NO_ROOM}}<span class="muted">everyone</span>{{/NO_ROOM}}</td>
    <td class="text" data-label="Message">{{TEXT:pre_escape}}</td>
  </tr>
  {{/ROW}}
  {{#EMPTY}}<tr><td colspan="6" class="muted">No messages match.</td></tr>{{/EMPTY}}
  </tbody>
</table>
</div>

<nav class="pager" aria-label="Pages">
  {{#NEWEST}}<a href="/admin/messages?{{QS}}">« Newest</a>{{/NEWEST}}
  {{#NEWER}}<a href="/admin/messages?{{QS}}" rel="prev">‹ Newer</a>{{/NEWER}}
  {{#OLDER}}<a href="/admin/messages?{{QS}}" rel="next">Older ›</a>{{/OLDER}}
</nav>
