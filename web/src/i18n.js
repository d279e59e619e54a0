// The dashboard's words in English and Chinese. Every label on every page comes from here; a
// test checks that both languages have every key.

export const messages = {
  en: {
    overview: 'Overview', segments: 'Segments', user: 'User', demand: 'Demand', models: 'Models',
    assistant: 'Assistant', privacy: 'Privacy',
    api_key: 'API key', use_key: 'Use key', need_key: 'This server needs an API key: paste one above (persona keys create).',
    loading: 'Loading…', users: 'Users', items: 'Items', events: 'Events', revenue: 'Revenue', texts: 'Texts',
    rejects: 'Rejected rows', sessions: 'Sessions', events_per_day: 'Events per day', revenue_per_day: 'Revenue per day',
    active_users: 'Active users', new_users: 'New users', funnel: 'Funnel: view → cart → purchase (users, last 90 days)',
    top_items: 'Top items', top_categories: 'Top categories', name: 'Name', count: 'Count', title: 'Title',
    segment_sizes: 'Segment sizes', segment: 'Segment', label: 'Label', size: 'Size', share: 'Share',
    centroids: 'Segment centroids (medians of members)', feature: 'Feature', rfm_grid: 'RFM grid: users by recency (rows) and frequency (columns)',
    rfm_segments: 'RFM segments', recency: 'Recency score', frequency: 'Frequency score', mean_monetary: 'mean monetary',
    silhouette: 'Silhouette', show: 'Show', user_id: 'User id', profile: 'Profile', consent: 'Consent',
    personalisation: 'personalisation', analytics: 'analytics', given: 'given', refused: 'refused',
    tags: 'Tags', affinities: 'Category affinity', brands: 'Brand affinity', timeline: 'Timeline (newest first)',
    time: 'Time', type: 'Type', item: 'Item', category: 'Category', quantity: 'Quantity', value: 'Value',
    recommendations: 'Recommendations', score: 'Score', reason: 'Why', no_profile: 'No profile',
    rfm: 'RFM', recency_days: 'Days since last purchase', purchases: 'Purchases', items_source: 'from the items the texts are about', monetary: 'Monetary', propensity: 'Purchase propensity',
    sentiment_weekly: 'Sentiment of texts per week', categories_weekly: 'Demand categories per week',
    keywords: 'Keywords (last four weeks)', word: 'Word', forecasts: 'Demand forecast (units per day, next 14 days)',
    from_model: 'from the trained model', from_data: 'from the data\'s labels', history: 'history', forecast: 'forecast',
    backtest: 'backtest MAE', seasonal_naive: 'seasonal naive', method_holt_winters: 'Holt-Winters', method_seasonal_naive: 'seasonal naive (last week)', method_seasonal_mean: 'seasonal mean (4 weeks)', model_files: 'Model files', file: 'File', kind: 'Kind', task: 'Task', created: 'Created',
    metrics: 'Metrics', training_history: 'Training history', recommender: 'Recommender', retrain: 'Retrain now',
    retrain_started: 'Retraining started: the new model is served when it is ready.',
    chat_as: 'Chat as user', message: 'Message', send: 'Send', new_session: 'New session', intent: 'Intent',
    confidence: 'Confidence', slots: 'Slots', sources: 'Sources', handoff: 'Handed to a person',
    dp_budgets: 'Differential privacy: budget per analyst', analyst: 'Analyst', budget: 'Budget (ε)', spent: 'Spent (ε)',
    queries: 'Queries', last: 'Last', audit_log: 'Audit log (newest first)', intact: 'chain intact', broken: 'chain BROKEN',
    no_audit: 'No audit log: the server has no key ring', actor: 'Actor', action: 'Action', details: 'Details',
    erasures: 'Erasures', sealed: 'Store sealed', yes: 'yes', no: 'no', consent_refusals: 'Users refusing',
    erase_user: 'Erase a user (right to be forgotten)', erase: 'Erase', erase_confirm: 'Erase every trace of this user? This cannot be undone.',
    erased: 'Erased. Receipt:', not_found: 'Not found', total: 'total',
    erase_retraining: 'The data is gone; the recommender is retraining without them…',
    erase_complete: 'Complete: the recommender no longer learns from them.',
    erase_model_removed: 'Complete: the recommender could not be retrained and was removed.',
    ev_view: 'view', ev_click: 'click', ev_cart: 'cart', ev_purchase: 'purchase', ev_return: 'return', ev_rate: 'rating',
    ev_review: 'review', ev_search: 'search', ev_favourite: 'favourite',
    f_recency_days: 'days since last purchase', f_frequency: 'purchases', f_monetary: 'spend', f_basket_value: 'basket value',
    f_tenure_days: 'days as a customer', f_events: 'events', f_events_30d: 'events (30 days)', f_cart_rate: 'cart rate',
    f_purchase_rate: 'purchase rate', f_return_rate: 'return rate', f_price_sensitivity: 'price sensitivity',
    f_sentiment: 'sentiment', f_weekend_share: 'weekend share', high: 'high', low: 'low', typical: 'typical',
    rfm_no_purchases: 'no purchases', rfm_hibernating: 'hibernating', rfm_at_risk: 'at risk', rfm_cant_lose_them: 'can\'t lose them',
    rfm_about_to_sleep: 'about to sleep', rfm_need_attention: 'need attention', rfm_loyal_customers: 'loyal customers',
    rfm_promising: 'promising', rfm_potential_loyalists: 'potential loyalists', rfm_new_customers: 'new customers', rfm_champions: 'champions',
    r_popular_now: 'popular now', r_popular_across_the_shop: 'popular across the shop', r_popular_in_recent_days: 'popular in recent days',
    r_like_items_you_chose: 'like items you chose (category, brand, description)', r_chosen_by_similar_customers: 'chosen by customers whose choices are like yours',
    r_you_chose_it_before: 'you chose it before', r_popular_in_your_segment: 'popular in your segment', r_chosen_by_the_same_customers: 'chosen by the same customers',
    r_similar_to: 'similar to {0}, which you chose',
    partial_week: 'partial: {0} of 7 days',
    model_quality: 'How good each model is, beside a trivial one', measure: 'Measure', baseline: 'Baseline', note: 'Note',
    validation_accuracy: 'validation accuracy', baseline_majority: 'always the most common class', baseline_random: 'random order',
    baseline_popularity: 'the most popular items', base_rate: 'base rate',
    perfect_caveat: '1.0 on {0} validation texts: too few, or too easy (synthetic data), to tell; check on held-out real texts (persona eval)',
    chart_empty: 'Nothing to draw: the store holds no data for this chart yet.',
    empty_texts: 'No dated texts (reviews, chats) in these weeks: ingest texts with a time.',
    dp_query: 'A differentially private statistic', budget_left: 'budget left', upper: 'clamp', run: 'Run',
    dp_note: 'count: customers with events; sum, mean, quantile: spend per buying customer, each clamped at the value given; histogram: buyers by category. Each query spends ε of your budget.',
    all_items: 'all items', segment_users: 'Users in {0}', of_total: '{0} of {1}, most valuable first', more: 'More',
    drill_hint: 'Choose a segment to list its users.', src_faq: 'FAQ', src_graph: 'knowledge graph',
    src_recommender: 'recommender', src_orders: 'order history of', match: 'match',
    m_method: 'method', m_latency_us: 'latency (µs)', m_p50: 'median', m_p95: '95th percentile',
    st_count: 'count', st_sum: 'sum', st_mean: 'mean', st_quantile: 'median', st_histogram: 'histogram',
    m_validation: 'validation', m_ndcg_at_10: 'nDCG@10', m_hit_rate: 'hit rate', m_coverage: 'coverage',
    m_eval_users: 'users evaluated', m_map_at_10: 'MAP@10', m_precision_at_10: 'precision@10', m_recall_at_10: 'recall@10',
    m_novelty: 'novelty', m_recs_per_s: 'lists per second', m_k: 'k', m_horizon_days: 'horizon (days)',
    m_majority_accuracy: 'majority-class accuracy', m_popularity_ndcg_at_10: 'popularity nDCG@10', m_test_auc: 'test AUC', m_cv_auc: 'cross-validated AUC',
    m_validation_accuracy: 'validation accuracy', m_validation_texts: 'validation texts', m_base_rate: 'base rate', m_alpha: 'alpha',
    m_users: 'users', kind_faq_index: 'FAQ index', kind_text_classifier: 'text classifier', kind_keyword_index: 'keyword index',
    kind_tabular_classifier: 'tabular classifier', kind_recommender: 'recommender', task_faq: 'FAQ', task_intent: 'intent',
    task_keywords: 'keywords', task_propensity: 'purchase propensity', task_recommend: 'recommendation', task_sentiment: 'sentiment',
    task_category: 'demand category',
    experiments: 'Experiments', x_none: 'No experiments yet. Start one with persona experiment create NAME --variants a=current,b=FILE (or POST /v1/experiments); send what users did with each list to POST /v1/feedback.',
    x_surface: 'Tests', x_surface_recommend: 'recommenders', x_surface_assistant: 'assistant settings',
    x_status: 'Status', x_running: 'running', x_stopped: 'stopped', x_promoted: '{0} promoted', x_variants: 'Variants', x_variant: 'Variant',
    x_report: 'Report: {0}', x_days: 'Days of feedback', x_srm_ok: 'the split holds', x_srm_broken: 'SAMPLE-RATIO MISMATCH: the split is broken',
    x_ctr: 'Click-through', x_conversion: 'Conversion', x_revenue_per_impression: 'Revenue per impression', x_interval: 'Interval',
    x_ctr_by_variant: 'Click-through per variant (%; triangle: top of the 95% interval)', x_impressions: 'Impressions', x_clicks: 'Clicks',
    x_comparisons: 'Each variant against the control', x_effect: 'Change', x_significant: 'Decided', x_mde: 'Detectable now',
    x_sequential_note: 'A sequential test, valid however often it is read: a change is decided only when its always-valid p is below 0.05.',
    x_too_little_short: 'Not enough feedback to compare yet.',
    x_verdict_no_feedback: 'No feedback yet: send impressions and clicks to POST /v1/feedback.',
    x_verdict_srm: 'The split is broken (p = {0}): users per variant are not in the shares set. Do not trust the comparisons; look for a bug in serving or in sending feedback.',
    x_verdict_beats: '{0} beats {1} on {2} ({3}; p = {4})', x_verdict_worse: '{0} is worse than {1} on {2} ({3}; p = {4})',
    x_verdict_undecided: 'Undecided: no difference in click-through between {0} and {1} yet; at today\'s sample a change of about {2} would be detected.',
    x_verdict_too_little: 'Not enough feedback to compare yet (at least two users per variant with impressions).',
  },
  zh: {
    overview: '概览', segments: '用户分群', user: '用户', demand: '需求', models: '模型',
    assistant: '客服助手', privacy: '隐私',
    api_key: 'API 密钥', use_key: '使用密钥', need_key: '此服务需要 API 密钥：请在上方粘贴（persona keys create）。',
    loading: '加载中…', users: '用户数', items: '商品数', events: '事件数', revenue: '收入', texts: '文本数',
    rejects: '被拒绝的行', sessions: '会话数', events_per_day: '每日事件', revenue_per_day: '每日收入',
    active_users: '活跃用户', new_users: '新用户', funnel: '转化漏斗：浏览 → 加购 → 购买（用户数，近 90 天）',
    top_items: '热门商品', top_categories: '热门类目', name: '名称', count: '数量', title: '标题',
    segment_sizes: '分群规模', segment: '分群', label: '标签', size: '人数', share: '占比',
    centroids: '分群中心（成员中位数）', feature: '特征', rfm_grid: 'RFM 网格：按最近购买（行）与购买频次（列）的用户数',
    rfm_segments: 'RFM 分群', recency: '最近度评分', frequency: '频次评分', mean_monetary: '平均消费额',
    silhouette: '轮廓系数', show: '查看', user_id: '用户 ID', profile: '用户画像', consent: '授权',
    personalisation: '个性化', analytics: '分析', given: '已同意', refused: '已拒绝',
    tags: '标签', affinities: '类目偏好', brands: '品牌偏好', timeline: '行为时间线（最新在前）',
    time: '时间', type: '类型', item: '商品', category: '类目', quantity: '数量', value: '数值',
    recommendations: '推荐结果', score: '得分', reason: '推荐理由', no_profile: '无画像',
    rfm: 'RFM', recency_days: '距上次购买天数', purchases: '购买次数', items_source: '来自文本所涉及商品的类目', monetary: '消费额', propensity: '购买倾向',
    sentiment_weekly: '每周文本情感', categories_weekly: '每周需求类别',
    keywords: '关键词（近四周）', word: '词语', forecasts: '需求预测（每日件数，未来 14 天）',
    from_model: '来自训练的模型', from_data: '来自数据自带标签', history: '历史', forecast: '预测',
    backtest: '回测 MAE', seasonal_naive: '季节朴素法', method_holt_winters: 'Holt-Winters 指数平滑', method_seasonal_naive: '季节朴素法（上周同日）', method_seasonal_mean: '季节均值（近 4 周）', model_files: '模型文件', file: '文件', kind: '种类', task: '任务', created: '创建时间',
    metrics: '指标', training_history: '训练历史', recommender: '推荐模型', retrain: '立即重新训练',
    retrain_started: '已开始重新训练：新模型就绪后即上线。',
    chat_as: '以此用户身份对话', message: '消息', send: '发送', new_session: '新会话', intent: '意图',
    confidence: '置信度', slots: '槽位', sources: '来源', handoff: '已转人工',
    dp_budgets: '差分隐私：每位分析师的预算', analyst: '分析师', budget: '预算 (ε)', spent: '已用 (ε)',
    queries: '查询次数', last: '最近', audit_log: '审计日志（最新在前）', intact: '链完整', broken: '链已损坏',
    no_audit: '无审计日志：服务器没有密钥环', actor: '操作者', action: '操作', details: '详情',
    erasures: '删除次数', sealed: '存储已加密', yes: '是', no: '否', consent_refusals: '拒绝授权的用户',
    erase_user: '删除用户（被遗忘权）', erase: '删除', erase_confirm: '确定删除该用户的全部痕迹？此操作不可撤销。',
    erased: '已删除。回执：', not_found: '未找到', total: '共',
    erase_retraining: '数据已删除；推荐模型正在去除其数据后重新训练……',
    erase_complete: '完成：推荐模型已不再包含其数据。',
    erase_model_removed: '完成：推荐模型无法重新训练，已删除。',
    ev_view: '浏览', ev_click: '点击', ev_cart: '加购', ev_purchase: '购买', ev_return: '退货', ev_rate: '评分',
    ev_review: '评价', ev_search: '搜索', ev_favourite: '收藏',
    f_recency_days: '距上次购买天数', f_frequency: '购买次数', f_monetary: '消费额', f_basket_value: '客单价',
    f_tenure_days: '成为顾客天数', f_events: '行为数', f_events_30d: '近 30 天行为数', f_cart_rate: '加购率',
    f_purchase_rate: '购买率', f_return_rate: '退货率', f_price_sensitivity: '价格敏感度',
    f_sentiment: '情感倾向', f_weekend_share: '周末占比', high: '高', low: '低', typical: '一般',
    rfm_no_purchases: '未购买', rfm_hibernating: '沉睡客户', rfm_at_risk: '流失风险客户', rfm_cant_lose_them: '不能失去的客户',
    rfm_about_to_sleep: '即将沉睡客户', rfm_need_attention: '需要关注客户', rfm_loyal_customers: '忠诚客户',
    rfm_promising: '有潜力客户', rfm_potential_loyalists: '潜在忠诚客户', rfm_new_customers: '新客户', rfm_champions: '冠军客户',
    r_popular_now: '当前热门', r_popular_across_the_shop: '全店热门', r_popular_in_recent_days: '近几天热门',
    r_like_items_you_chose: '与您选过的商品相似（类目、品牌、描述）', r_chosen_by_similar_customers: '与您选择相似的顾客也选了它',
    r_you_chose_it_before: '您之前选过', r_popular_in_your_segment: '在您所在的分群中热门', r_chosen_by_the_same_customers: '选它的顾客也选了这些',
    r_similar_to: '与您选过的 {0} 相似',
    partial_week: '不完整：7 天中的 {0} 天',
    model_quality: '各模型的效果（与简单基线对比）', measure: '指标', baseline: '基线', note: '说明',
    validation_accuracy: '验证集准确率', baseline_majority: '总是预测最常见的类别', baseline_random: '随机排序',
    baseline_popularity: '最热门的商品', base_rate: '正例占比',
    perfect_caveat: '在 {0} 条验证文本上为 1.0：样本太少或太容易（合成数据），无法判断；请用真实的留出数据检验（persona eval）',
    chart_empty: '暂无可绘制的数据：存储中还没有此图表的数据。',
    empty_texts: '这些周内没有带时间的文本（评价、对话）：请导入带时间的文本。',
    dp_query: '差分隐私统计', budget_left: '剩余预算', upper: '截断上限', run: '运行',
    dp_note: '计数：有行为的顾客数；求和、均值、分位数：每位购买顾客的消费额，截断到给定值；直方图：按类目的购买者。每次查询消耗你的 ε 预算。',
    all_items: '全部商品', segment_users: '{0} 的用户', of_total: '共 {1} 人，显示 {0} 人，按消费额从高到低', more: '更多',
    drill_hint: '选择一个分群以列出其用户。', src_faq: '常见问题', src_graph: '知识图谱',
    src_recommender: '推荐模型', src_orders: '订单记录：', match: '匹配度',
    m_method: '方法', m_latency_us: '延迟（微秒）', m_p50: '中位数', m_p95: '95 分位',
    st_count: '计数', st_sum: '求和', st_mean: '均值', st_quantile: '中位数', st_histogram: '直方图',
    m_validation: '验证', m_ndcg_at_10: 'nDCG@10', m_hit_rate: '命中率', m_coverage: '覆盖率',
    m_eval_users: '评估用户数', m_map_at_10: 'MAP@10', m_precision_at_10: '精确率@10', m_recall_at_10: '召回率@10',
    m_novelty: '新颖度', m_recs_per_s: '每秒推荐列表数', m_k: 'k', m_horizon_days: '预测天数',
    m_majority_accuracy: '多数类准确率', m_popularity_ndcg_at_10: '热门基线 nDCG@10', m_test_auc: '测试集 AUC', m_cv_auc: '交叉验证 AUC',
    m_validation_accuracy: '验证集准确率', m_validation_texts: '验证文本数', m_base_rate: '正例占比', m_alpha: 'alpha',
    m_users: '用户数', kind_faq_index: 'FAQ 索引', kind_text_classifier: '文本分类器', kind_keyword_index: '关键词索引',
    kind_tabular_classifier: '表格分类器', kind_recommender: '推荐模型', task_faq: '常见问题', task_intent: '意图',
    task_keywords: '关键词', task_propensity: '购买倾向', task_recommend: '推荐', task_sentiment: '情感',
    task_category: '需求类别',
    experiments: '实验', x_none: '还没有实验。用 persona experiment create 名称 --variants a=current,b=模型文件（或 POST /v1/experiments）开始一个；把用户对每个列表的行为发到 POST /v1/feedback。',
    x_surface: '比较对象', x_surface_recommend: '推荐模型', x_surface_assistant: '助手设置',
    x_status: '状态', x_running: '进行中', x_stopped: '已停止', x_promoted: '已采用 {0}', x_variants: '变体', x_variant: '变体',
    x_report: '报告：{0}', x_days: '反馈天数', x_srm_ok: '分流比例正常', x_srm_broken: '样本比例失衡：分流有问题',
    x_ctr: '点击率', x_conversion: '转化率', x_revenue_per_impression: '每次曝光收入', x_interval: '置信区间',
    x_ctr_by_variant: '各变体点击率（%；三角：95% 区间上限）', x_impressions: '曝光', x_clicks: '点击',
    x_comparisons: '各变体与对照组比较', x_effect: '变化', x_significant: '已有结论', x_mde: '当前可检出',
    x_sequential_note: '序贯检验，随时查看都有效：只有当始终有效的 p 值低于 0.05 时才下结论。',
    x_too_little_short: '反馈还不够，暂不能比较。',
    x_verdict_no_feedback: '还没有反馈：请把曝光和点击发到 POST /v1/feedback。',
    x_verdict_srm: '分流有问题（p = {0}）：各变体的用户数不符合设定比例。比较结果不可信；请检查推荐服务或反馈上报是否有错误。',
    x_verdict_beats: '{0} 在{2}上优于 {1}（{3}；p = {4}）', x_verdict_worse: '{0} 在{2}上不如 {1}（{3}；p = {4}）',
    x_verdict_undecided: '尚无结论：{0} 与 {1} 的点击率暂无差异；以目前的样本，约 {2} 的变化可被检出。',
    x_verdict_too_little: '反馈还不够，暂不能比较（每个变体至少需要两位有曝光的用户）。',
  },
};

let lang = localStorage.getItem('persona.lang') || ((navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en');

export function language() {
  return lang;
}

export function setLanguage(l) {
  lang = messages[l] ? l : 'en';
  localStorage.setItem('persona.lang', lang);
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}

export function t(key) {
  return messages[lang][key] ?? messages.en[key] ?? key;
}

// Names the server gives in English, in the reader's language: a feature ("basket_value"), an
// event type, a learned segment's label ("high basket_value, low recency_days"), an RFM segment.
export function featureName(f) {
  return messages[lang]['f_' + f] ?? f.replace(/_/g, ' ');
}

// The catalogue's category names in Chinese (GET /v1/categories), loaded once by the app.
let categoriesZh = {};
export function setCategoryNames(list) {
  categoriesZh = Object.fromEntries((list || []).filter((c) => c.name_zh).map((c) => [c.name, c.name_zh]));
}

// A catalogue category (a path such as "Beauty > Skincare", or a top level) in the reader's
// language; "all" is the forecasts' whole shop. Names the catalogue does not translate stay as given.
export function categoryName(name) {
  if (name === 'all') return t('all_items');
  return (lang === 'zh' && categoriesZh[name]) || name;
}

// A model's figure ("validation.ndcg_at_10"), kind ("text-classifier") or task, in words; names
// without a translation are shown as they are.
export function metricName(key) {
  return key.split('.').map((part) => messages[lang]['m_' + part] ?? part.replace(/_/g, ' ')).join(' · ');
}
export function modelKind(kind) {
  return messages[lang]['kind_' + String(kind).replace(/-/g, '_')] ?? kind;
}
export function modelTask(task) {
  return messages[lang]['task_' + task] ?? task;
}

export function eventType(type) {
  return t('ev_' + type);
}

export function segmentLabel(label) {
  if (!label) return '';
  return label.split(', ').map((part) => {
    const m = part.match(/^(high|low) (\w+)$/);
    return m ? `${t(m[1])}${lang === 'zh' ? '' : ' '}${featureName(m[2])}` : t(part);
  }).join(lang === 'zh' ? '、' : ', ');
}

export function rfmSegment(name) {
  return t('rfm_' + name.replace(/'/g, '').replace(/ /g, '_'));
}

// A recommendation's reason (the server's English sentence), in the reader's language.
const reasonKeys = {
  'popular now': 'r_popular_now', 'popular across the shop': 'r_popular_across_the_shop',
  'popular in recent days': 'r_popular_in_recent_days', 'like items you chose (category, brand, description)': 'r_like_items_you_chose',
  'chosen by customers whose choices are like yours': 'r_chosen_by_similar_customers', 'you chose it before': 'r_you_chose_it_before',
  'popular in your segment': 'r_popular_in_your_segment', 'chosen by the same customers': 'r_chosen_by_the_same_customers',
};
export function reason(text, because = '') {
  const m = text.match(/^similar to (.+), which you chose$/);
  if (m) return t('r_similar_to').replace('{0}', because || m[1]);
  return reasonKeys[text] ? t(reasonKeys[text]) : text;
}
