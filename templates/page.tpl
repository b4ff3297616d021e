{{%AUTOESCAPE context="HTML"}}
{{!page.tpl: the frame of every page: head, admin navigation, the page's body.}}
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{{TITLE}} · {{SITE_NAME}}</title>
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/site.css">
<script src="/static/site.js" defer></script>
</head>
<body class="{{BODY_CLASS}}">
{{#ADMIN}}
<header class="topbar">
  <a class="brand" href="/admin"><img src="/static/icon.svg" alt="" width="24" height="24">
    {{SITE_NAME}} admin</a>
  <nav>
    <a href="/admin" class="{{NAV_DASHBOARD}}">Dashboard</a>
    <a href="/admin/messages" class="{{NAV_MESSAGES}}">Messages</a>
    <a href="/admin/connections" class="{{NAV_CONNECTIONS}}">Connections</a>
  </nav>
  <form method="post" action="/admin/logout" class="logout">
    <input type="hidden" name="csrf" value="{{CSRF}}">
    <span class="who">{{USERNAME}}</span>
    <button type="submit">Log out</button>
  </form>
</header>
{{/ADMIN}}
<main>
{{>BODY}}
</main>
</body>
</html>
