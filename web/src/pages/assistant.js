import { api } from '../api.js';
import { language, reason, t } from '../i18n.js';
import { card, el, num, problem } from '../ui.js';

// Where a reply came from, in words: an FAQ entry's question, a graph fact, a recommended item's
// title and why, a user's orders.
function sourceText(s) {
  if (typeof s !== 'object' || s === null) return String(s);
  switch (s.kind) {
    case 'faq': return `${t('src_faq')} “${s.question}” (${t('match')} ${num(s.score)})`;
    case 'graph': return `${t('src_graph')}: ${[s.entity, s.relation].filter(Boolean).join(' · ')}`;
    case 'recommender': return `${t('src_recommender')}: ${(language() === 'zh' && s.title_zh) || s.title || s.item} (${reason(s.reason || '')})`;
    case 'orders': return `${t('src_orders')} ${s.user}`;
    default: return Object.entries(s).map(([k, v]) => `${k} ${v}`).join(' ');
  }
}

// The assistant console: chat as a chosen user, with the understanding behind each reply shown.
export async function render(root) {
  let session = '';
  const user = el('input', { id: 'chat-user', value: sessionStorage.getItem('persona.user') || 'U000042' });
  const message = el('input', { id: 'chat-message', class: 'wide', placeholder: t('message') });
  const log = el('div', { class: 'chat', 'data-testid': 'chat-log', 'data-verbatim': true });
  const send = async () => {
    const text = message.value.trim();
    if (!text) return;
    message.value = '';
    log.append(el('div', { class: 'bubble me' }, text));
    try {
      const r = await api('/v1/chat', { method: 'POST', body: { user: user.value.trim(), message: text, session } });
      session = r.session;
      log.append(el('div', { class: 'bubble bot', 'data-testid': 'chat-reply' },
        el('div', {}, r.reply),
        el('div', { class: 'meta' },
          el('span', { 'data-testid': 'chat-intent' }, `${t('intent')}: ${r.intent}`), ' · ',
          `${t('confidence')}: ${num(r.confidence)}`,
          r.slots && Object.keys(r.slots).length ? ` · ${t('slots')}: ${Object.entries(r.slots).map(([k, v]) => `${k} = ${v}`).join(', ')}` : '',
          r.sources && r.sources.length ? ` · ${t('sources')}: ${r.sources.map(sourceText).join('; ')}` : '',
          r.handoff ? ` · ${t('handoff')}` : '')));
    } catch (e) {
      log.append(problem(e));
    }
    log.scrollTop = log.scrollHeight;
  };
  message.addEventListener('keydown', (e) => { if (e.key === 'Enter') send(); });
  root.append(card(t('assistant'),
    el('div', { class: 'toolbar' },
      el('label', {}, t('chat_as'), ' ', user),
      el('button', { onclick: () => { session = ''; log.replaceChildren(); } }, t('new_session'))),
    log,
    el('div', { class: 'toolbar' }, message, el('button', { id: 'chat-send', onclick: send }, t('send')))));
}
