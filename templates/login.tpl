{{%AUTOESCAPE context="HTML"}}
{{!login.tpl: the admin login form.}}
<section class="card narrow login">
  <h1><img src="/static/icon.svg" alt="" width="32" height="32"> {{SITE_NAME}} admin</h1>
  {{#BYE}}<p class="notice ok" role="status">You are logged out.</p>{{/BYE}}
  {{#ERROR}}<p class="notice error" role="alert">{{TEXT}}</p>{{/ERROR}}
  <form method="post" action="/admin/login" class="stack">
    <input type="hidden" name="csrf" value="{{CSRF}}">
    <input type="hidden" name="next" value="{{NEXT}}">
    <label for="username">Name</label>
    <input id="username" name="username" autocomplete="username" required maxlength="128"
           value="{{USER}}" autofocus>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password"
           required maxlength="1024">
    <button type="submit">Log in</button>
  </form>
</section>
