using SocketStarter.Bench;

return await Cli.Build().Parse(args).InvokeAsync();
