-- With JWT on, a session resumes only for the user it was given to (null in demo mode).
ALTER TABLE chat_sessions ADD COLUMN user_id text NULL;
