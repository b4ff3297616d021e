{{%AUTOESCAPE context="HTML"}}
{{!error.tpl: the page of every 4xx/5xx answer.}}
<section class="card narrow error-page">
  <h1><span class="status">{{STATUS}}</span> {{REASON}}</h1>
  <p>{{MESSAGE}}</p>
  {{#HOME_ADMIN}}<p><a href="/admin">Back to the dashboard</a></p>{{/HOME_ADMIN}}
  {{#HOME_PUBLIC}}<p><a href="/">Back to the home page</a></p>{{/HOME_PUBLIC}}
</section>
